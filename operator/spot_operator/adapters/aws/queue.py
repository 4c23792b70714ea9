"""The :class:`spot_operator.ports.NoticeQueue` port over SQS: the EventBridge -> SQS interruption queue.

``receive`` long-polls (up to 10 messages) and parses each body with :func:`parse_event`. A message that
carries several notices (a Health event naming several instances) yields one QueueMessage per notice,
all with the same receipt; ``delete`` removes each receipt once. Unknown or malformed messages come
back with ``notice=None`` and ``error`` set: the caller logs and deletes them. Messages are deleted only
when the caller says so, after it recorded the notices; SQS may deliver one twice, and callers dedupe by
(instance, kind).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from spot_operator.adapters.aws.clients import AwsClients
from spot_operator.adapters.aws.errors import call
from spot_operator.adapters.aws.events import EventError, parse_event
from spot_operator.errors import CloudError, InvalidRequest
from spot_operator.ports import QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

__all__ = ["SqsNoticeQueue", "parse_event", "queue_region"]

log = logging.getLogger(__name__)

MAX_MESSAGES = 10  # SQS's maximum per ReceiveMessage and per DeleteMessageBatch


def queue_region(queue_url: str) -> str:
    """'https://sqs.us-east-1.amazonaws.com/123/q' -> 'us-east-1'. Pure."""
    host = urlparse(queue_url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 3 and parts[0] == "sqs":
        return parts[1]
    if len(parts) >= 4 and parts[1] == "queue" and parts[0] != "sqs":  # legacy <region>.queue.amazonaws.com
        return parts[0]
    raise InvalidRequest(f"cannot tell the region of queue {queue_url!r}; pass region=", "InvalidQueueUrl")


class SqsNoticeQueue:
    """Implements :class:`spot_operator.ports.NoticeQueue`."""

    def __init__(
        self,
        clients: AwsClients,
        queue_url: str,
        region: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clients = clients
        self.queue_url = queue_url
        self.region = region or queue_region(queue_url)
        self.now = now

    def _sqs(self, wait_seconds: int = 20) -> SQSClient:
        return self.clients.sqs(self.region, long_poll_seconds=wait_seconds)

    async def receive(self, wait_seconds: int = 20) -> list[QueueMessage]:
        sqs = self._sqs(wait_seconds)
        response = await call(
            "ReceiveMessage",
            lambda: sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=MAX_MESSAGES,
                WaitTimeSeconds=max(0, min(20, wait_seconds)),
            ),
        )
        received_at = self.now()
        messages: list[QueueMessage] = []
        for message in response.get("Messages", ()):
            receipt = str(message.get("ReceiptHandle", ""))
            body = str(message.get("Body", ""))
            detail_type = _detail_type(body)
            try:
                notices = parse_event(body, received_at)
            except EventError as exc:
                messages.append(QueueMessage(receipt, None, detail_type, str(exc)))
                continue
            if not notices:
                messages.append(QueueMessage(receipt, None, detail_type))
            messages.extend(QueueMessage(receipt, notice, detail_type) for notice in notices)
        return messages

    async def delete(self, messages: Sequence[QueueMessage]) -> None:
        receipts = list(dict.fromkeys(m.receipt for m in messages if m.receipt))
        sqs = self._sqs()
        failed: list[str] = []
        for start in range(0, len(receipts), MAX_MESSAGES):
            batch = receipts[start : start + MAX_MESSAGES]
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(batch)
            ]
            response = await call(
                "DeleteMessageBatch",
                lambda e=entries: sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=e),  # type: ignore[misc]
            )
            failed.extend(f"{f.get('Code')}: {f.get('Message', '')}" for f in response.get("Failed", ()))
        if failed:
            # A receipt that expired is redelivered later and deleted then: surface it, do not hide it.
            raise CloudError(f"{len(failed)} message(s) not deleted: {'; '.join(failed[:3])}", "BatchFailed")


def _detail_type(body: str) -> str:
    try:
        event = json.loads(body)
    except json.JSONDecodeError:
        return ""
    value = event.get("detail-type") if isinstance(event, dict) else None
    return value if isinstance(value, str) else ""
