from __future__ import annotations

from spot_operator.planning.backoff import MAX_RETRY_SECONDS, retry_delay


def test_the_delay_doubles_from_the_base() -> None:
    assert [retry_delay(5.0, n) for n in (0, 1, 2, 3, 4)] == [5.0, 5.0, 10.0, 20.0, 40.0]


def test_the_delay_stops_at_the_cap_for_any_number_of_attempts() -> None:
    # A long outage in the simulator counted tens of thousands of failed calls: 2**n must not overflow.
    assert retry_delay(5.0, 10) == MAX_RETRY_SECONDS
    assert retry_delay(5.0, 100_000) == MAX_RETRY_SECONDS
    assert retry_delay(5.0, 100_000, cap_seconds=600.0) == 600.0
