"""AwsSpotPrices over HTTP.

moto's behaviour, measured: DescribeSpotPriceHistory answers one placeholder row per offered type and
zone (price 0.00001, timestamp 2006-01-02, product "Linux/UNIX (Amazon VPC)"), ignores StartTime and the
product filter, and never paginates; there is no Price List API. AWS's behaviour (every change since
StartTime plus the price in force at StartTime, newest first, pages with NextToken; GetProducts pages of
JSON strings) is served by the proxy from the real rows of 2022-05-31.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

from spot_operator.adapters.aws.clients import AwsClients, CallRecorder
from spot_operator.adapters.aws.prices import AwsSpotPrices
from spot_operator.planning.model import Pool
from tests.fakes.moto_server import MotoAws
from tests.integration.aws.proxy import InjectingProxy, Rule, get_products_pages, spot_price_history_pages
from tests.unit.aws.spot_history import spot_rows
from tests.unit.aws.test_price_list import product

T0 = datetime(2022, 5, 31, 18, 0, tzinfo=UTC)


def via(proxy: InjectingProxy, aws: MotoAws, recorder: CallRecorder) -> AwsClients:
    return aws.clients(endpoint_url=proxy.url, recorder=recorder, max_attempts=2)


async def test_moto_placeholder_prices_parse(aws: MotoAws) -> None:
    source = AwsSpotPrices(aws.clients())
    observations = await source.spot_prices("us-east-1", ["m5.large"], None)
    assert observations
    assert {o.pool.instance_type for o in observations} == {"m5.large"}
    assert all(o.pool.zone.startswith("us-east-1") for o in observations)
    # moto's placeholders, pinned so a moto upgrade that changes them is noticed here.
    assert {o.price for o in observations} == {0.00001}
    assert {o.at.year for o in observations} == {2006}


async def test_paginated_and_incremental_on_real_rows(aws: MotoAws, proxy: InjectingProxy) -> None:
    rows = spot_rows("us-east-1")  # six hours of every Linux pool of the region: most pools change rarely
    types = sorted({r["InstanceType"] for r in rows})
    assert len(rows) > 1000
    page = 200
    proxy.add(Rule("DescribeSpotPriceHistory", spot_price_history_pages(rows, page), times=None))
    recorder = CallRecorder()
    source = AwsSpotPrices(via(proxy, aws, recorder), now=lambda: T0 + timedelta(hours=6))

    everything = await source.spot_prices("us-east-1", types, T0 - timedelta(minutes=1))
    expected = {
        (r["AvailabilityZone"], r["InstanceType"], r["Timestamp"], float(r["SpotPrice"])) for r in rows
    }
    assert {(o.pool.zone, o.pool.instance_type, o.at, o.price) for o in everything} == expected
    pages = recorder.count("ec2:DescribeSpotPriceHistory")
    assert pages == math.ceil(len(rows) / page) >= 3
    sent = proxy.calls("DescribeSpotPriceHistory")[0].params
    assert {v for k, v in sent.items() if k.startswith("InstanceType.")} == set(types)
    assert sent["ProductDescription.1"] == "Linux/UNIX"

    # Incremental: from the middle of the day, only later changes come back, although AWS also sends the
    # price in force at StartTime.
    since = sorted(o.at for o in everything)[len(everything) // 2]
    later = await source.spot_prices("us-east-1", types, since)
    assert later
    assert all(o.at > since for o in later)
    assert len(later) == len({e for e in expected if e[2] > since})
    assert (
        proxy.calls("DescribeSpotPriceHistory")[pages]
        .params["StartTime"]
        .startswith(since.strftime("%Y-%m-%dT%H:%M:%S"))
    )


async def test_first_refresh_looks_back_from_now(aws: MotoAws, proxy: InjectingProxy) -> None:
    busiest = Counter(r["InstanceType"] for r in spot_rows("us-east-1")).most_common(1)[0][0]
    rows = [r for r in spot_rows("us-east-1") if r["InstanceType"] == busiest]
    assert rows
    proxy.add(Rule("DescribeSpotPriceHistory", spot_price_history_pages(rows, 1000), times=None))
    now = T0 + timedelta(hours=7)
    source = AwsSpotPrices(
        via(proxy, aws, CallRecorder()), initial_lookback=timedelta(hours=2), now=lambda: now
    )
    observations = await source.spot_prices("us-east-1", [busiest], None)
    start = proxy.calls("DescribeSpotPriceHistory")[0].params["StartTime"]
    assert start.startswith((now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    # With no ``since`` the price in force at the start is kept: it is the current price of quiet pools.
    assert {o.pool for o in observations} == {Pool(busiest, r["AvailabilityZone"]) for r in rows}


async def test_on_demand_falls_back_to_the_bundled_table_without_a_pricing_api(aws: MotoAws) -> None:
    recorder = CallRecorder()
    clock = [T0]
    source = AwsSpotPrices(aws.clients(recorder=recorder), now=lambda: clock[0])
    prices = await source.on_demand_prices("us-east-1", ["m5.large", "c5.large", "nonexistent.size"])
    assert prices == {"m5.large": 0.096, "c5.large": 0.085}
    assert source.last_on_demand_source["us-east-1"] == "bundled"
    assert recorder.count("pricing:GetProducts") == 1
    # The failing API is not asked on every refresh, only again after the retry interval.
    await source.on_demand_prices("us-east-1", ["m5.large"])
    assert recorder.count("pricing:GetProducts") == 1
    clock[0] += timedelta(minutes=16)
    await source.on_demand_prices("us-east-1", ["m5.large"])
    assert recorder.count("pricing:GetProducts") == 2
    assert await source.on_demand_prices("eu-west-1", ["m5.large"]) == {}  # no bundled figures there


async def test_on_demand_from_the_price_list_api(aws: MotoAws, proxy: InjectingProxy) -> None:
    price_list = [product("m5.large", "0.0970000000"), product("c5.large", "0.0860000000")]
    proxy.add(Rule("GetProducts", get_products_pages(price_list, 1), times=None))
    recorder = CallRecorder()
    source = AwsSpotPrices(via(proxy, aws, recorder))
    prices = await source.on_demand_prices("us-east-1", ["m5.large", "c5.large"])
    assert prices == {"m5.large": 0.097, "c5.large": 0.086}
    assert source.last_on_demand_source["us-east-1"] == "pricing-api"
    assert recorder.count("pricing:GetProducts") == 2  # two pages
    filters = proxy.calls("GetProducts")[0].params["Filters"]
    assert '"ANY_OF"' in filters
    assert '"c5.large,m5.large"' in filters
    # Cached: asking again makes no call; a type the API did not answer for comes from the table.
    assert await source.on_demand_prices("us-east-1", ["m5.large"]) == {"m5.large": 0.097}
    assert recorder.count("pricing:GetProducts") == 2
    mixed = await source.on_demand_prices("us-east-1", ["m5.large", "r5.large"])
    assert mixed == {"m5.large": 0.097, "r5.large": 0.126}
    assert source.last_on_demand_source["us-east-1"] == "mixed"
