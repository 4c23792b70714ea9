"""The region a zone belongs to, from a zone name (``us-east-1a``) or a zone ID (``use1-az1``).

Zone names are per-account aliases of zone IDs, so a zone ID cannot be turned into a name without the
account's DescribeAvailabilityZones; pools keep the zone exactly as the feed gave it.
"""

from __future__ import annotations

import re
from typing import Final

_NAME = re.compile(r"^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)(?:[a-z]|-)")
_ID = re.compile(r"^([a-z]+?)(\d+)-az\d+$")

_ID_AREAS: Final = {
    "use": "us-east",
    "usw": "us-west",
    "usge": "us-gov-east",
    "usgw": "us-gov-west",
    "cac": "ca-central",
    "caw": "ca-west",
    "mxc": "mx-central",
    "sae": "sa-east",
    "euw": "eu-west",
    "euc": "eu-central",
    "eun": "eu-north",
    "eus": "eu-south",
    "apne": "ap-northeast",
    "apse": "ap-southeast",
    "aps": "ap-south",
    "ape": "ap-east",
    "mes": "me-south",
    "mec": "me-central",
    "afs": "af-south",
    "ilc": "il-central",
    "cnn": "cn-north",
    "cnnw": "cn-northwest",
}


def region_of(zone: str) -> str:
    """'us-east-1a' and 'us-west-2-lax-1a' -> their region; 'use1-az1' -> 'us-east-1'.

    A zone ID from an area this table does not know yet keeps its prefix ('xyz1'): still a stable
    grouping key for sibling zones, never an error that would stop ingestion.
    """
    named = _NAME.match(zone)
    if named:
        return named.group(1)
    by_id = _ID.match(zone)
    if by_id:
        area, number = by_id.groups()
        known = _ID_AREAS.get(area)
        return f"{known}-{number}" if known else f"{area}{number}"
    raise ValueError(f"not a zone name or zone ID: {zone!r}")
