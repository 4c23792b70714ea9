"""The :class:`spot_operator.ports.SpotPriceSource` port over boto3.

- Spot: one paginated DescribeSpotPriceHistory per region for the union of instance types asked,
  Linux/UNIX, from ``since`` (incremental) or from ``initial_lookback`` ago on the first call.
- On-demand: the Price List API (``GetProducts``, served from us-east-1) with one ``ANY_OF`` filter on
  the instance types, cached for ``on_demand_ttl``. Types it does not answer for, and every type when
  it fails, come from the bundled table ``on_demand_prices.json`` (its origin and date are in the file);
  a failure is logged and counted, the API is asked again after ``on_demand_retry``, and
  ``last_on_demand_source`` says where the figures came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from spot_operator.adapters.aws.clients import AwsClients
from spot_operator.adapters.aws.errors import call
from spot_operator.adapters.aws.price_list import (
    LINUX,
    PriceParseError,
    fallback_table,
    new_spot_prices,
    parse_on_demand_product,
)
from spot_operator.errors import CloudError
from spot_operator.ports import PriceObservation

if TYPE_CHECKING:
    from mypy_boto3_pricing.type_defs import FilterTypeDef

log = logging.getLogger(__name__)

PAGE_SIZE = 1000


def on_demand_filters(region: str, instance_types: Sequence[str]) -> list[FilterTypeDef]:
    """GetProducts filters for the hourly Linux on-demand price of these types in the region. Pure."""
    fields = {
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    filters: list[FilterTypeDef] = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]
    filters.append(
        {"Type": "ANY_OF", "Field": "instanceType", "Value": ",".join(sorted(set(instance_types)))}
    )
    return filters


class AwsSpotPrices:
    """Implements :class:`spot_operator.ports.SpotPriceSource`."""

    def __init__(
        self,
        clients: AwsClients,
        initial_lookback: timedelta = timedelta(hours=6),
        on_demand_ttl: timedelta = timedelta(hours=24),
        on_demand_retry: timedelta = timedelta(minutes=15),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clients = clients
        self.initial_lookback = initial_lookback
        self.on_demand_ttl = on_demand_ttl
        self.on_demand_retry = on_demand_retry
        self._failed_at: dict[str, datetime] = {}
        self.now = now
        self._on_demand: dict[str, dict[str, float]] = {}
        self._on_demand_at: dict[str, datetime] = {}
        self._asked: dict[str, set[str]] = {}  # types already asked of the Price List API, per region
        self.last_on_demand_source: dict[str, str] = {}  # region -> "pricing-api" | "bundled" | "mixed"

    async def spot_prices(
        self, region: str, instance_types: Sequence[str], since: datetime | None
    ) -> list[PriceObservation]:
        types = sorted(set(instance_types))
        if not types:
            return []
        start = since if since is not None else self.now() - self.initial_lookback
        ec2 = self.clients.ec2(region)

        def rows() -> list[Any]:
            paginator = ec2.get_paginator("describe_spot_price_history")
            pages = paginator.paginate(
                InstanceTypes=types,  # type: ignore[arg-type]
                ProductDescriptions=[LINUX],
                StartTime=start,
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
            return [row for page in pages for row in page.get("SpotPriceHistory", ())]

        raw = await call("DescribeSpotPriceHistory", rows)
        try:
            return new_spot_prices(raw, since)
        except PriceParseError as exc:
            raise CloudError(f"DescribeSpotPriceHistory answered an unreadable row: {exc}") from exc

    async def on_demand_prices(self, region: str, instance_types: Sequence[str]) -> dict[str, float]:
        wanted = sorted(set(instance_types))
        if not wanted:
            return {}
        fetched_at = self._on_demand_at.get(region)
        known = self._on_demand.get(region, {})
        fresh = fetched_at is not None and self.now() - fetched_at < self.on_demand_ttl
        asked = self._asked.get(region, set()) if fresh else set()
        failed_at = self._failed_at.get(region)
        backing_off = failed_at is not None and self.now() - failed_at < self.on_demand_retry
        if not set(wanted) <= asked and not backing_off:
            try:
                answered = await self._get_products(region, wanted)
            except CloudError as exc:
                self._failed_at[region] = self.now()
                log.warning(
                    "%s: on-demand prices from the Price List API failed, using the bundled table for %s: %s",
                    region,
                    self.on_demand_retry,
                    exc,
                )
            else:
                self._failed_at.pop(region, None)
                self._on_demand[region] = {**(known if fresh else {}), **answered}
                self._on_demand_at[region] = self.now()
                self._asked[region] = asked | set(wanted)
            known = self._on_demand.get(region, {})
        table = fallback_table().prices.get(region, {})
        result: dict[str, float] = {}
        from_api = from_table = 0
        for instance_type in wanted:
            if instance_type in known:
                result[instance_type] = known[instance_type]
                from_api += 1
            elif instance_type in table:
                result[instance_type] = table[instance_type]
                from_table += 1
        self.last_on_demand_source[region] = (
            "pricing-api" if not from_table else "bundled" if not from_api else "mixed"
        )
        return result

    async def _get_products(self, region: str, instance_types: Sequence[str]) -> dict[str, float]:
        pricing = self.clients.pricing()
        filters = on_demand_filters(region, instance_types)

        def products() -> list[str]:
            paginator = pricing.get_paginator("get_products")
            pages = paginator.paginate(ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1")
            return [str(item) for page in pages for item in page.get("PriceList", ())]

        found: dict[str, float] = {}
        for text in await call("GetProducts", products):
            try:
                price = parse_on_demand_product(text)
            except PriceParseError as exc:
                raise CloudError(f"GetProducts answered an unreadable product: {exc}") from exc
            if price is not None and price.instance_type in instance_types:
                if price.region and price.region != region:
                    continue
                found[price.instance_type] = price.usd_per_hour
        return found
