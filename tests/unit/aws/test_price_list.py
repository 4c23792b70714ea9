"""Price parsing on real DescribeSpotPriceHistory rows, Price List products, and the bundled table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from spot_operator.adapters.aws.price_list import (
    PriceParseError,
    fallback_table,
    new_spot_prices,
    parse_on_demand_product,
    parse_spot_price,
)
from spot_operator.adapters.aws.prices import on_demand_filters
from spot_operator.planning.model import Pool
from tests.unit.aws.spot_history import spot_rows


def product(instance_type: str, usd: str, region: str = "us-east-1", unit: str = "Hrs") -> str:
    """A GetProducts PriceList entry in the shape the Price List API returns (aws_v1 format)."""
    sku = "JRTCKXETXFSKU000"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                    "location": "US East (N. Virginia)",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "endRange": "Inf",
                                "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "offerTermCode": "JRTCKXETXF",
                    }
                }
            },
            "version": "20240508191027",
        }
    )


def test_parse_real_rows() -> None:
    rows = spot_rows("us-east-1")
    assert len(rows) > 1000
    observations = [parse_spot_price(r) for r in rows]
    assert all(o.pool.zone.startswith("us-east-1") for o in observations)
    assert all(0 < o.price < 100 for o in observations)
    assert all(o.at.tzinfo is not None for o in observations)
    assert {o.product for o in observations} == {"Linux/UNIX"}


def test_new_spot_prices_is_incremental_and_sorted() -> None:
    rows = spot_rows("us-west-2")
    times = sorted({r["Timestamp"] for r in rows})
    since = times[len(times) // 2]
    kept = new_spot_prices(rows + rows, since)  # every row twice: duplicates are dropped
    assert kept
    assert all(o.at > since for o in kept)
    assert [o.at for o in kept] == sorted(o.at for o in kept)
    assert len(kept) == len(
        {(r["AvailabilityZone"], r["InstanceType"], r["Timestamp"]) for r in rows if r["Timestamp"] > since}
    )
    assert new_spot_prices(rows, max(times)) == []


def test_parse_spot_price_rejects_broken_rows() -> None:
    with pytest.raises(PriceParseError, match="SpotPrice"):
        parse_spot_price(
            {"InstanceType": "m5.large", "AvailabilityZone": "us-east-1a", "Timestamp": "2024-01-01"}
        )
    with pytest.raises(PriceParseError):
        parse_spot_price(
            {
                "InstanceType": "m5.large",
                "AvailabilityZone": "us-east-1a",
                "SpotPrice": "cheap",
                "Timestamp": "2024-01-01T00:00:00Z",
            }
        )


def test_parse_spot_price_accepts_the_wire_string_time() -> None:
    obs = parse_spot_price(
        {
            "InstanceType": "m5.large",
            "AvailabilityZone": "us-east-1a",
            "SpotPrice": "0.0350",
            "Timestamp": "2022-05-31T18:20:41Z",
        }
    )
    assert obs.pool == Pool("m5.large", "us-east-1a")
    assert obs.at == datetime(2022, 5, 31, 18, 20, 41, tzinfo=UTC)
    assert obs.price == pytest.approx(0.035)


def test_parse_on_demand_product() -> None:
    price = parse_on_demand_product(product("m5.large", "0.0960000000"))
    assert price is not None
    assert (price.instance_type, price.region, price.usd_per_hour) == ("m5.large", "us-east-1", 0.096)


def test_parse_on_demand_product_without_hourly_price() -> None:
    assert parse_on_demand_product(product("m5.large", "0.0000000000")) is None
    assert parse_on_demand_product(product("m5.large", "1.0", unit="Quantity")) is None
    with pytest.raises(PriceParseError):
        parse_on_demand_product("{}")
    with pytest.raises(PriceParseError, match="not a number"):
        parse_on_demand_product(product("m5.large", "n/a"))


def test_on_demand_filters() -> None:
    filters = on_demand_filters("eu-west-1", ["m5.large", "c5.large", "m5.large"])
    by_field = {f["Field"]: (f["Type"], f["Value"]) for f in filters}
    assert by_field["instanceType"] == ("ANY_OF", "c5.large,m5.large")
    assert by_field["regionCode"] == ("TERM_MATCH", "eu-west-1")
    assert by_field["operatingSystem"] == ("TERM_MATCH", "Linux")
    assert by_field["tenancy"] == ("TERM_MATCH", "Shared")
    assert by_field["preInstalledSw"] == ("TERM_MATCH", "NA")
    assert by_field["capacitystatus"] == ("TERM_MATCH", "Used")


def test_bundled_table_states_its_origin_and_has_real_figures() -> None:
    table = fallback_table()
    assert "karpenter-provider-aws" in table.source["repository"]
    assert table.source["generated_at"].startswith("20")
    prices = table.prices["us-east-1"]
    assert len(prices) > 500
    # Spot prices of the real feed sit below on-demand for nearly every type it shares with the table.
    rows = spot_rows("us-east-1")
    below = [
        r for r in rows if r["InstanceType"] in prices and float(r["SpotPrice"]) < prices[r["InstanceType"]]
    ]
    shared = [r for r in rows if r["InstanceType"] in prices]
    assert shared
    assert len(below) / len(shared) > 0.95
