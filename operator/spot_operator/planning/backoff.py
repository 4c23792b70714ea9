"""How long to wait before retrying a failed launch: exponential, capped. Pure."""

from __future__ import annotations

MAX_RETRY_SECONDS = 120.0
_MAX_DOUBLINGS = 16  # 2**16 times any sane base is past the cap; a larger exponent only risks overflow


def retry_delay(base_seconds: float, attempts: int, cap_seconds: float = MAX_RETRY_SECONDS) -> float:
    """``base * 2**(attempts - 1)`` seconds, at most ``cap_seconds``, for any number of attempts."""
    doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
    return float(min(base_seconds * 2**doublings, cap_seconds))
