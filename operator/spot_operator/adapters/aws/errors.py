"""Turn botocore exceptions into the domain errors of :mod:`spot_operator.errors`, and run calls off the loop.

Nothing is swallowed: every exception that leaves :func:`call` is a :class:`CloudError` subclass carrying
the AWS code and operation, chained to the original.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    WaiterError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from spot_operator.errors import (
    CloudError,
    InsufficientCapacity,
    InvalidRequest,
    NotFound,
    Throttled,
    Transient,
    Unauthorized,
)

T = TypeVar("T")

# A pool (type + zone, or the account's spot quota) has no capacity for this request: try the next one.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "InsufficientCapacityOnHost",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "VcpuLimitExceeded",
        "UnfulfillableCapacity",
        "ReservationCapacityExceeded",
        # The instance type is not offered in this zone: for this pool that is the same as no capacity.
        "Unsupported",
    }
)
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "RequestExpired",
    }
)
UNAUTHORIZED_CODES = frozenset(
    {
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "OptInRequired",
        "Blocked",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "TargetGroupNotFound",
        "TargetGroupNotFoundException",
        "NoSuchHostedZone",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "InvalidTarget",
        "ResourceNotFoundException",
    }
)
INVALID_CODES = frozenset(
    {
        "MissingParameter",
        "ValidationError",
        "ValidationException",
        "IdempotentParameterMismatch",
        "UnsupportedOperation",
        "InvalidChangeBatch",
        "MalformedQueryString",
        "InvalidInput",
    }
)


def classify(code: str, status: int | None = None) -> type[CloudError]:
    """The domain error for an AWS error code and HTTP status. Pure."""
    if code in CAPACITY_CODES:
        return InsufficientCapacity
    if code in THROTTLING_CODES or status == 429:
        return Throttled
    if code in UNAUTHORIZED_CODES:
        return Unauthorized
    if code in NOT_FOUND_CODES or code.endswith((".NotFound", "NotFound")):
        return NotFound
    if code in TRANSIENT_CODES or (status is not None and status >= 500):
        return Transient
    if code in INVALID_CODES or code.startswith("Invalid") or code.endswith(".Malformed"):
        return InvalidRequest
    return CloudError


def translate(exc: Exception, operation: str = "") -> CloudError:
    """The domain error for any exception a boto3 call raised (already-translated errors pass through)."""
    if isinstance(exc, CloudError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        op = operation or exc.operation_name
        cls = classify(code, status)
        text = f"{op}: {code}: {message}"
        if cls is InsufficientCapacity:
            return InsufficientCapacity(text, code=code, operation=op)
        return cls(text, code, op)
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):
        # Covers EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError.
        return Transient(f"{operation}: {exc}", type(exc).__name__, operation)
    if isinstance(exc, NoCredentialsError):
        return Unauthorized(f"{operation}: {exc}", type(exc).__name__, operation)
    if isinstance(exc, ParamValidationError):
        return InvalidRequest(f"{operation}: {exc}", type(exc).__name__, operation)
    if isinstance(exc, WaiterError):
        reason = str(exc.kwargs.get("reason", "")) if hasattr(exc, "kwargs") else ""
        last = getattr(exc, "last_response", None) or {}
        code = str(last.get("Error", {}).get("Code", "")) if isinstance(last, dict) else ""
        if code:
            return classify(code)(f"{operation}: {code}: {reason or exc}", code, operation)
        return Transient(f"{operation}: {reason or exc}", "WaiterTimeout", operation)
    if isinstance(exc, BotoCoreError):
        return CloudError(f"{operation}: {exc}", type(exc).__name__, operation)
    raise TypeError(f"not an AWS error: {exc!r}") from exc


# boto3 blocks, so each call runs in a worker thread. Two pools: a burst of bulk work (a thousand new
# agents launching) must not queue a failover's launch or traffic move behind it. asyncio's default pool
# (min(32, CPUs + 4) threads, the node's CPUs in a pod) is left to everything else.
BULK_THREADS = 16
URGENT_THREADS = 8
_pools: dict[bool, ThreadPoolExecutor] = {}
_urgent: contextvars.ContextVar[bool] = contextvars.ContextVar("aws_call_urgent", default=False)


def _pool(is_urgent: bool) -> ThreadPoolExecutor:
    pool = _pools.get(is_urgent)
    if pool is None:
        size, name = (URGENT_THREADS, "aws-urgent") if is_urgent else (BULK_THREADS, "aws")
        pool = _pools[is_urgent] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
    return pool


@contextlib.contextmanager
def urgent(flag: bool = True) -> Iterator[None]:
    """AWS calls made inside (in this task) go to the urgent pool when ``flag``."""
    token = _urgent.set(flag or _urgent.get())
    try:
        yield
    finally:
        _urgent.reset(token)


async def call(operation: str, fn: Callable[[], T]) -> T:
    """Run one blocking boto3 call in a worker thread; botocore exceptions become domain errors.

    The call runs in a copy of the caller's context (as ``asyncio.to_thread`` does), so the call hooks
    botocore runs in that thread see the caller's context variables."""
    ctx = contextvars.copy_context()
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool(_urgent.get()), ctx.run, fn)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation) from exc
