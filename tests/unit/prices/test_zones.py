from __future__ import annotations

import pytest

from spot_operator.prices.zones import region_of


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("us-east-1a", "us-east-1"),
        ("eu-central-1c", "eu-central-1"),
        ("us-west-2-lax-1a", "us-west-2"),
        ("us-gov-west-1a", "us-gov-west-1"),
        ("use1-az1", "us-east-1"),
        ("euw3-az2", "eu-west-3"),
        ("apne1-az4", "ap-northeast-1"),
        ("apse2-az3", "ap-southeast-2"),
        ("aps1-az1", "ap-south-1"),
        ("sae1-az2", "sa-east-1"),
        ("cac1-az1", "ca-central-1"),
        ("xyz9-az1", "xyz9"),  # an area the table does not know: still a stable key
    ],
)
def test_region_of(zone: str, region: str) -> None:
    assert region_of(zone) == region


def test_region_of_rejects_what_is_not_a_zone() -> None:
    with pytest.raises(ValueError, match="not a zone"):
        region_of("m5.large")
