"""ClientError codes and botocore exceptions -> domain errors."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from spot_operator.adapters.aws.errors import call, classify, translate, urgent
from spot_operator.errors import (
    CloudError,
    InsufficientCapacity,
    InvalidRequest,
    NotFound,
    Throttled,
    Transient,
    Unauthorized,
)


def client_error(
    code: str, status: int, operation: str = "RunInstances", message: str = "boom"
) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        # EC2 answers capacity errors with HTTP 500: the code must win over the status.
        ("InsufficientInstanceCapacity", 500, InsufficientCapacity),
        ("InsufficientCapacity", 500, InsufficientCapacity),
        ("SpotMaxPriceTooLow", 400, InsufficientCapacity),
        ("MaxSpotInstanceCountExceeded", 400, InsufficientCapacity),
        ("Unsupported", 400, InsufficientCapacity),
        ("RequestLimitExceeded", 503, Throttled),
        ("Throttling", 400, Throttled),
        ("TooManyRequestsException", 400, Throttled),
        ("PriorRequestNotComplete", 400, Throttled),
        ("SomethingNew", 429, Throttled),
        ("InternalError", 500, Transient),
        ("ServiceUnavailable", 503, Transient),
        ("SomethingNew", 502, Transient),
        ("InvalidInstanceID.NotFound", 400, NotFound),
        ("InvalidAllocationID.NotFound", 400, NotFound),
        ("TargetGroupNotFound", 400, NotFound),
        ("NoSuchHostedZone", 404, NotFound),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, NotFound),
        ("UnauthorizedOperation", 403, Unauthorized),
        ("AccessDenied", 403, Unauthorized),
        ("AuthFailure", 401, Unauthorized),
        ("InvalidParameterValue", 400, InvalidRequest),
        ("InvalidAMIID.Malformed", 400, InvalidRequest),
        ("IdempotentParameterMismatch", 400, InvalidRequest),
        ("MissingParameter", 400, InvalidRequest),
        ("IncorrectInstanceState", 400, CloudError),
    ],
)
def test_classify(code: str, status: int, expected: type[CloudError]) -> None:
    assert classify(code, status) is expected


def test_translate_keeps_code_operation_and_message() -> None:
    err = translate(client_error("InsufficientInstanceCapacity", 500, message="no m5.large in us-east-1a"))
    assert isinstance(err, InsufficientCapacity)
    assert err.code == "InsufficientInstanceCapacity"
    assert err.operation == "RunInstances"
    assert "no m5.large in us-east-1a" in str(err)
    assert not err.retryable


def test_throttling_and_transient_are_retryable() -> None:
    assert translate(client_error("RequestLimitExceeded", 503)).retryable
    assert translate(client_error("InternalError", 500)).retryable
    assert not translate(client_error("UnauthorizedOperation", 403)).retryable


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com"), Transient),
        (ConnectTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com"), Transient),
        (ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com"), Transient),
        (NoCredentialsError(), Unauthorized),
        (ParamValidationError(report="MinCount must be an integer"), InvalidRequest),
    ],
)
def test_translate_botocore_exceptions(exc: Exception, expected: type[CloudError]) -> None:
    err = translate(exc, "DescribeInstances")
    assert type(err) is expected
    assert err.operation == "DescribeInstances"


def test_translate_refuses_foreign_exceptions() -> None:
    with pytest.raises(TypeError, match="not an AWS error"):
        translate(KeyError("x"))


WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


async def test_call_runs_in_the_callers_context_on_the_pool_it_asks_for() -> None:
    """botocore's call hooks run in the worker thread: they see the caller's context variables."""

    def seen() -> tuple[str, str]:
        return WHO.get(), threading.current_thread().name

    token = WHO.set("failover")
    try:
        with urgent():
            who, thread = await call("RunInstances", seen)
        assert (who, thread.startswith("aws-urgent_")) == ("failover", True)
        who, thread = await call("DescribeInstances", seen)
        assert (who, thread.startswith("aws_")) == ("failover", True)
    finally:
        WHO.reset(token)


async def test_call_translates_botocore_errors() -> None:
    def refused() -> None:
        raise client_error("InsufficientInstanceCapacity", 500)

    with pytest.raises(InsufficientCapacity):
        await call("RunInstances", refused)
