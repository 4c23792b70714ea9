"""Savings from stretches of the primary and clean series (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from spot_operator.prices.savings import Series, Stretch, compute_savings, stretches_from_switches

H = 3600
DAY0 = 1_654_041_600  # 2022-06-01T00:00:00Z


def flat(price: float, start: float, hours: float) -> Series:
    times = np.arange(start, start + hours * H, 300, dtype=np.float64)
    return Series(times, np.full(len(times), price))


def test_two_hours_on_spot_save_the_difference_to_on_demand() -> None:
    stretches = [Stretch("a", True, DAY0, DAY0 + 2 * H, on_demand=0.10)]
    out = compute_savings("ns/x", stretches, {"a": flat(0.03, DAY0, 3)}, DAY0 + 2 * H)
    assert out.to_date_usd == pytest.approx(0.14)
    assert out.unpriced_hours == 0
    # The last period is the hour now is in (empty here: the stretch ended on the hour).
    assert [p.saved_usd for p in out.hourly[-3:]] == pytest.approx([0.07, 0.07, 0.0])
    assert out.hourly[-3].start.timestamp() == DAY0
    assert out.daily[-1].saved_usd == pytest.approx(0.14)
    assert out.daily[-1].priced_hours == pytest.approx(2.0)


def test_the_current_rate_uses_the_latest_price_of_the_current_pool() -> None:
    stretches = [Stretch("a", True, DAY0, DAY0 + H, 0.10)]
    series = Series(np.array([DAY0, DAY0 + 1800.0]), np.array([0.05, 0.04]))
    out = compute_savings("ns/x", stretches, {"a": series}, DAY0 + 2000)
    assert out.hourly_usd == pytest.approx(0.06)
    assert out.percent == pytest.approx(60.0)


def test_a_price_older_than_an_hour_gives_no_current_rate() -> None:
    stretches = [Stretch("a", True, DAY0, DAY0 + 3 * H, 0.10)]
    series = Series(np.array([float(DAY0)]), np.array([0.05]))
    out = compute_savings("ns/x", stretches, {"a": series}, DAY0 + 3 * H)
    assert (out.hourly_usd, out.percent) == (0.0, 0.0)


def test_buckets_without_a_clean_price_are_reported_not_guessed() -> None:
    stretches = [Stretch("a", True, DAY0, DAY0 + 2 * H, 0.10)]
    out = compute_savings("ns/x", stretches, {"a": flat(0.03, DAY0, 1)}, DAY0 + 2 * H)
    assert out.to_date_usd == pytest.approx(0.07)
    assert out.unpriced_hours == pytest.approx(1.0)


def test_on_demand_stretches_save_nothing_but_count_as_priced() -> None:
    stretches = [
        Stretch("a", True, DAY0, DAY0 + H, 0.10),
        Stretch("b", False, DAY0 + H, DAY0 + 2 * H, 0.10),
    ]
    out = compute_savings("ns/x", stretches, {"a": flat(0.04, DAY0, 1)}, DAY0 + 2 * H)
    assert out.to_date_usd == pytest.approx(0.06)
    assert out.hourly[-2].cost_usd == pytest.approx(0.10)
    assert out.hourly[-2].saved_usd == pytest.approx(0.0)
    assert out.hourly_usd == 0.0


def test_partial_buckets_are_prorated() -> None:
    # From 00:02:30 to 00:07:30: half of two buckets priced 0.06 and 0.02.
    series = Series(np.array([DAY0, DAY0 + 300.0]), np.array([0.06, 0.02]))
    out = compute_savings(
        "ns/x", [Stretch("a", True, DAY0 + 150, DAY0 + 450, 0.10)], {"a": series}, DAY0 + 450
    )
    assert out.hourly[-1].cost_usd == pytest.approx((0.06 * 150 + 0.02 * 150) / H)
    assert out.hourly[-1].priced_hours == pytest.approx(300 / H)


def test_switches_become_stretches_up_to_now() -> None:
    switches = [(DAY0 + H, "b", True), (DAY0, "a", True), (DAY0 + 5 * H, "c", False)]
    stretches = stretches_from_switches(switches, {"a": 0.1, "c": 0.2}, now=DAY0 + 3 * H)
    assert [(s.pool, s.start, s.end, s.on_demand) for s in stretches] == [
        ("a", DAY0, DAY0 + H, 0.1),
        ("b", DAY0 + H, DAY0 + 3 * H, None),
    ]


def test_periods_cover_the_requested_span_even_when_idle() -> None:
    out = compute_savings("ns/x", [], {}, DAY0 + 10, hours=6, days=3)
    assert len(out.hourly) == 6 and len(out.daily) == 3
    assert out.to_date_usd == 0.0
