"""The price refresh and its merging rules, on the real DescribeSpotPriceHistory rows of 2022-05-31."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spot_operator.adapters.aws.price_list import new_spot_prices, parse_spot_price
from spot_operator.api import Capacity, SpotAgentSpec
from spot_operator.errors import Throttled
from spot_operator.planning.model import Pool
from spot_operator.ports import AgentRef, PriceObservation
from spot_operator.runtime.prices import (
    PriceBook,
    collect_prices_once,
    instance_types_by_region,
    latest_by_pool,
    newest_time,
    region_of_zone,
)
from spot_operator.state import AgentState
from tests.unit.aws.spot_history import spot_rows

T0 = datetime(2022, 5, 31, 18, 0, tzinfo=UTC)


def obs(pool: str, minutes: int, price: float, product: str = "Linux/UNIX") -> PriceObservation:
    return PriceObservation(Pool.parse(pool), T0 + timedelta(minutes=minutes), price, product)


def agent(n: int, region: str, types: list[str]) -> AgentState:
    spec = SpotAgentSpec.model_validate(
        {"region": region, "image": "ami-0123456789abcdef0", "instanceTypes": types}
    )
    return AgentState(AgentRef("default", f"a{n}", f"uid-{n}"), spec)


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("us-east-1a", "us-east-1"),
        ("us-east-1-bos-1a", "us-east-1"),
        ("us-gov-west-1b", "us-gov-west-1"),
        ("ap-southeast-2c", "ap-southeast-2"),
    ],
)
def test_region_of_zone(zone: str, region: str) -> None:
    assert region_of_zone(zone) == region


def test_region_of_zone_rejects_zone_ids() -> None:
    with pytest.raises(ValueError, match="not an availability zone"):
        region_of_zone("use1-az4")


def test_latest_by_pool_keeps_the_newest_linux_price() -> None:
    current = {Pool.parse("m5.large.us-east-1a"): obs("m5.large.us-east-1a", 10, 0.05)}
    merged = latest_by_pool(
        current,
        [
            obs("m5.large.us-east-1a", 5, 0.01),  # older: ignored
            obs("m5.large.us-east-1a", 20, 0.04),
            obs("m5.large.us-east-1a", 30, 0.9, "Windows"),  # another product: ignored
            obs("c5.large.us-east-1b", 1, 0.03, "Linux/UNIX (Amazon VPC)"),
        ],
    )
    assert merged[Pool.parse("m5.large.us-east-1a")].price == 0.04
    assert merged[Pool.parse("c5.large.us-east-1b")].price == 0.03
    assert current[Pool.parse("m5.large.us-east-1a")].price == 0.05  # pure: the input is untouched


def test_newest_time_never_goes_back() -> None:
    assert newest_time([], None) is None
    assert newest_time([obs("m5.large.us-east-1a", 5, 1.0)], T0 + timedelta(hours=1)) == T0 + timedelta(
        hours=1
    )
    assert newest_time([obs("m5.large.us-east-1a", 5, 1.0), obs("m5.large.us-east-1b", 7, 1.0)], T0) == (
        T0 + timedelta(minutes=7)
    )


def test_book_on_real_rows_matches_a_direct_computation() -> None:
    rows = spot_rows("us-east-1")
    observations = [parse_spot_price(r) for r in rows]
    book = PriceBook()
    # Fed in three arbitrary chunks, the book ends where one pass over everything ends.
    third = len(observations) // 3
    for chunk in (observations[third:], observations[:third]):
        book.add_spot(chunk)
    expected: dict[Pool, tuple[datetime, float]] = {}
    for o in observations:
        if o.pool not in expected or o.at >= expected[o.pool][0]:
            expected[o.pool] = (o.at, o.price)
    assert {p: (o.at, o.price) for p, o in book.spot.items()} == expected
    some = next(iter(expected))
    assert book.spot_price(some) == expected[some][1]
    assert book.spot_price(Pool(some.instance_type, some.zone, Capacity.ON_DEMAND)) == expected[some][1]
    prices = book.pools("us-east-1", [some.instance_type])
    assert prices
    assert all(p.instance_type == some.instance_type for p in prices)


class ReplaySource:
    """A SpotPriceSource that answers from the real rows as DescribeSpotPriceHistory would: per region,
    for the asked types, the rows after ``since`` up to the source's own ``now``."""

    def __init__(self, rows: list[dict[str, Any]], now: datetime) -> None:
        self.rows = rows
        self.now = now
        self.calls: list[tuple[str, tuple[str, ...], datetime | None]] = []
        self.fail: set[str] = set()

    async def spot_prices(
        self, region: str, instance_types: Sequence[str], since: datetime | None
    ) -> list[PriceObservation]:
        self.calls.append((region, tuple(instance_types), since))
        if region in self.fail:
            raise Throttled("slow down", "RequestLimitExceeded", "DescribeSpotPriceHistory")
        wanted = set(instance_types)
        rows = [
            r
            for r in self.rows
            if str(r["AvailabilityZone"]).startswith(region)
            and r["InstanceType"] in wanted
            and r["Timestamp"] <= self.now
        ]
        return new_spot_prices(rows, since)

    async def on_demand_prices(self, region: str, instance_types: Sequence[str]) -> dict[str, float]:
        return dict.fromkeys(instance_types, 1.0)


async def test_collect_is_one_request_per_region_and_incremental() -> None:
    rows = spot_rows("us-east-1") + spot_rows("us-west-2")
    types = ["m5.large", "c5.large", "r5.large"]
    agents = {}
    for n in range(30):
        state = agent(n, ("us-east-1", "us-west-2")[n % 2], [types[n % 3]])
        agents[state.key] = state
    assert instance_types_by_region(agents) == {"us-east-1": sorted(types), "us-west-2": sorted(types)}
    source = ReplaySource(rows, T0 + timedelta(hours=3))
    book, since = PriceBook(), dict[str, datetime]()
    received: list[PriceObservation] = []

    async def sink(batch: Sequence[PriceObservation]) -> None:
        received.extend(batch)

    first = await collect_prices_once(source, agents, book, since, sink)
    assert len(source.calls) == 2
    assert first.spot_calls == 2
    assert {c[0] for c in source.calls} == {"us-east-1", "us-west-2"}
    assert all(c[2] is None for c in source.calls)
    assert first.observations == len(received) > 0
    assert set(since) == {"us-east-1", "us-west-2"}
    assert all(t <= T0 + timedelta(hours=3) for t in since.values())

    source.now = T0 + timedelta(hours=6)
    before, after_first = len(received), dict(since)
    second = await collect_prices_once(source, agents, book, since, sink)
    assert {c[0]: c[2] for c in source.calls[2:]} == after_first  # each region asks from where it stopped
    new = received[before:]
    assert second.observations == len(new)
    # Nothing is handed to the sink twice, and the book holds the newest price of every pool seen.
    keys = [(o.pool, o.at, o.price) for o in received]
    assert len(keys) == len(set(keys))
    everything = new_spot_prices(
        [r for r in rows if r["InstanceType"] in types and r["Timestamp"] <= source.now], None
    )
    assert {o.pool for o in everything} == set(book.spot)
    assert book.on_demand_price("us-west-2", "c5.large") == 1.0


async def test_collect_reports_a_failing_region_and_does_not_advance_it() -> None:
    rows = spot_rows("us-east-1") + spot_rows("us-west-2")
    agents = {s.key: s for s in (agent(1, "us-east-1", ["m5.large"]), agent(2, "us-west-2", ["m5.large"]))}
    source = ReplaySource(rows, T0 + timedelta(hours=6))
    source.fail = {"us-west-2"}
    since: dict[str, datetime] = {}
    stats = await collect_prices_once(source, agents, PriceBook(), since)
    assert stats.errors
    assert stats.errors[0].startswith("us-west-2: RequestLimitExceeded")
    assert "us-west-2" not in since
    assert "us-east-1" in since
