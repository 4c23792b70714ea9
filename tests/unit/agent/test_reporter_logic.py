from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spot_agent.reporter import Delivery, backoff_seconds, classify


@pytest.mark.parametrize(
    ("status", "delivery"),
    [
        (200, Delivery.DELIVERED),
        (202, Delivery.DELIVERED),
        (400, Delivery.REJECTED),
        (404, Delivery.REJECTED),
        (413, Delivery.REJECTED),
        (415, Delivery.REJECTED),
        (422, Delivery.REJECTED),
        (401, Delivery.RETRY),  # a rotated token may still be on its way to the instance
        (403, Delivery.RETRY),
        (408, Delivery.RETRY),
        (429, Delivery.RETRY),
        (500, Delivery.RETRY),
        (503, Delivery.RETRY),
        (None, Delivery.RETRY),  # no answer
    ],
)
def test_classify(status: int | None, delivery: Delivery) -> None:
    assert classify(status) is delivery


@given(
    attempt=st.integers(1, 60),
    initial=st.floats(0.01, 10),
    maximum=st.floats(0.1, 600),
    jitter=st.floats(0, 0.999),
)
def test_backoff_is_bounded_and_grows(attempt: int, initial: float, maximum: float, jitter: float) -> None:
    delay = backoff_seconds(attempt, initial, maximum, jitter)
    cap = min(maximum, initial * 2.0 ** (attempt - 1))
    assert cap / 2 - 1e-9 <= delay <= cap + 1e-9
    assert backoff_seconds(attempt + 1, initial, maximum, jitter) >= delay - 1e-9


def test_backoff_sequence() -> None:
    assert [backoff_seconds(a, 0.5, 4.0, 0.0) for a in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
