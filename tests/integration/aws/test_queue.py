"""SqsNoticeQueue against a moto server, fed through moto's EventBridge -> SQS path with the shipped rules.

The rules are the EventPatterns of deploy/aws/interruption-queue.yaml. moto's behaviour, measured: it
accepts PutEvents with an ``aws.*`` source (AWS reserves those for its services: real events come from
EC2 and Health, not from PutEvents), and without a ``Time`` entry it writes the event ``time`` as epoch
seconds where AWS writes an ISO-8601 string (the parser accepts both). Queue URLs are moto's own
(``http://127.0.0.1:<port>/<account>/<name>``), so the region is passed rather than read from the URL.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from spot_operator.adapters.aws.clients import CallRecorder
from spot_operator.adapters.aws.queue import SqsNoticeQueue, queue_region
from spot_operator.api import SpotAgentSpec
from spot_operator.planning.model import NoticeKind
from spot_operator.ports import AgentRef
from spot_operator.state import AgentState
from tests.fakes.moto_server import MotoAws

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "aws" / "interruption-queue.yaml"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def shipped_rules() -> dict[str, dict[str, Any]]:
    template = yaml.safe_load(TEMPLATE.read_text())
    return {
        name: resource["Properties"]["EventPattern"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Events::Rule"
    }


def interruption_queue(aws: MotoAws, visibility: int = 30) -> tuple[str, str]:
    sqs = aws.boto("sqs")
    url = sqs.create_queue(
        QueueName="spot-optimizer-interruptions", Attributes={"VisibilityTimeout": str(visibility)}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws.boto("events")
    for name, pattern in shipped_rules().items():
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return url, arn


def put(aws: MotoAws, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    answer = aws.boto("events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "Time": datetime(2026, 3, 1, 11, 59, tzinfo=UTC),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


async def receive_all(queue: SqsNoticeQueue, expected: int) -> list[Any]:
    messages: list[Any] = []
    for _ in range(10):
        messages += await queue.receive(wait_seconds=1)
        if len({m.receipt for m in messages}) >= expected:
            break
    return messages


async def test_the_four_event_kinds_arrive_as_notices(aws: MotoAws) -> None:
    url, _ = interruption_queue(aws)
    put(
        aws,
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        {"instance-id": "i-0000000000000001a", "instance-action": "terminate"},
    )
    put(aws, "aws.ec2", "EC2 Instance Rebalance Recommendation", {"instance-id": "i-0000000000000002b"})
    put(
        aws,
        "aws.ec2",
        "EC2 Instance State-change Notification",
        {"instance-id": "i-0000000000000003c", "state": "stopping"},
    )
    put(
        aws,
        "aws.ec2",
        "EC2 Instance State-change Notification",  # filtered out by the shipped rule
        {"instance-id": "i-0000000000000003c", "state": "running"},
    )
    put(
        aws,
        "aws.health",
        "AWS Health Event",
        {
            "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x",
            "service": "EC2",
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": "scheduledChange",
            "startTime": "Sun, 08 Mar 2026 10:00:00 GMT",
            "affectedEntities": [
                {"entityValue": "i-0000000000000004d"},
                {"entityValue": "i-0000000000000005e"},
            ],
        },
    )
    put(
        aws,
        "aws.health",
        "AWS Health Event",
        {  # another category: the rule does not forward it
            "service": "EC2",
            "eventTypeCategory": "issue",
            "affectedEntities": [],
        },
    )

    recorder = CallRecorder()
    queue = SqsNoticeQueue(aws.clients(recorder=recorder), url, region=aws.region, now=lambda: NOW)
    messages = await receive_all(queue, 4)
    notices = sorted((m.notice.instance_id, m.notice.kind) for m in messages if m.notice)
    assert notices == [
        ("i-0000000000000001a", NoticeKind.INTERRUPTION),
        ("i-0000000000000002b", NoticeKind.REBALANCE),
        ("i-0000000000000003c", NoticeKind.STOPPED),
        ("i-0000000000000004d", NoticeKind.MAINTENANCE),
        ("i-0000000000000005e", NoticeKind.MAINTENANCE),
    ]
    assert all(m.error is None for m in messages)
    by_kind = {m.notice.kind: m.notice for m in messages if m.notice}
    assert by_kind[NoticeKind.INTERRUPTION].deadline == datetime(2026, 3, 1, 12, 1, tzinfo=UTC)
    assert by_kind[NoticeKind.MAINTENANCE].deadline == datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
    assert all(m.notice.source == "sqs" and m.notice.received_at == NOW for m in messages if m.notice)
    assert len({m.receipt for m in messages}) == 4  # the Health event is one message for two notices

    await queue.delete(messages)
    assert recorder.count("sqs:DeleteMessageBatch") == 1
    assert await queue.receive(wait_seconds=0) == []


async def test_malformed_and_unknown_messages_are_reported_then_deleted(aws: MotoAws) -> None:
    url, _ = interruption_queue(aws)
    sqs = aws.boto("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="this is not json")
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
    )
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(
            {
                "detail-type": "EC2 Spot Instance Interruption Warning",
                "time": "2026-03-01T12:00:00Z",
                "detail": {"instance-action": "terminate"},
            }
        ),
    )
    queue = SqsNoticeQueue(aws.clients(), url, region=aws.region, now=lambda: NOW)
    messages = await receive_all(queue, 3)
    assert len(messages) == 3
    assert all(m.notice is None for m in messages)
    errors = sorted(str(m.error) for m in messages)
    assert any("not JSON" in e for e in errors)
    assert any("unknown event 'Object Created'" in e for e in errors)
    assert any("instance-id" in e for e in errors)
    await queue.delete(messages)
    assert await queue.receive(wait_seconds=0) == []


async def test_undeleted_messages_come_back_and_duplicates_are_harmless(aws: MotoAws) -> None:
    url, _ = interruption_queue(aws, visibility=1)
    for _ in range(2):  # EventBridge and SQS deliver at least once: the same event twice
        put(
            aws,
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            {"instance-id": "i-0000000000000001a", "instance-action": "terminate"},
        )
    queue = SqsNoticeQueue(aws.clients(), url, region=aws.region, now=lambda: NOW)
    first = await receive_all(queue, 2)
    assert len(first) == 2
    spec = SpotAgentSpec.model_validate(
        {"region": "us-east-1", "image": "ami-0123456789abcdef0", "instanceTypes": ["m5.large"]}
    )
    state = AgentState(AgentRef("default", "db", "uid-1"), spec)
    recorded = [state.add_notice(m.notice) for m in first if m.notice]
    assert recorded == [True, False]  # the second is a duplicate, recorded once
    # Not deleted (say the operator crashed before recording): after the visibility timeout they return.
    await asyncio.sleep(1.5)
    again = await receive_all(queue, 2)
    assert {m.notice.instance_id for m in again if m.notice} == {"i-0000000000000001a"}
    await queue.delete(again)
    await asyncio.sleep(1.5)
    assert await queue.receive(wait_seconds=0) == []


def test_queue_region_from_url() -> None:
    assert queue_region("https://sqs.eu-west-1.amazonaws.com/123456789012/q") == "eu-west-1"
    assert queue_region("https://eu-west-1.queue.amazonaws.com/123456789012/q") == "eu-west-1"
