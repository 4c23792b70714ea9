"""Domain errors the adapters raise instead of SDK exceptions, so handlers can decide what to do."""

from __future__ import annotations

from collections.abc import Sequence


class CloudError(Exception):
    """An AWS call failed. ``code`` is the AWS error code when there is one."""

    retryable = False

    def __init__(self, message: str, code: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation


class InsufficientCapacity(CloudError):
    """No capacity in the pools tried (InsufficientInstanceCapacity, SpotMaxPriceTooLow, ...)."""

    def __init__(
        self, message: str, pools: Sequence[object] = (), code: str = "", operation: str = ""
    ) -> None:
        super().__init__(message, code, operation)
        self.pools = tuple(pools)


class Throttled(CloudError):
    retryable = True


class Transient(CloudError):
    """5xx, timeouts, connection resets: safe to retry with the same idempotency token."""

    retryable = True


class NotFound(CloudError):
    pass


class Unauthorized(CloudError):
    pass


class InvalidRequest(CloudError):
    """The request can never succeed as made (bad AMI, bad subnet, bad parameter)."""


class StoreUnavailable(Exception):
    """The database cannot be reached; callers degrade instead of failing."""
