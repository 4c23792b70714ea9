"""Pool and product ids: the compact keys of the big tables, created on first sight."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from spot_operator.planning.model import Pool
from spot_operator.prices.zones import region_of

from .db import is_postgresql
from .models import PoolRow, ProductRow

DEFAULT_PRODUCT = "Linux/UNIX"
_CHUNK = 500


@dataclass(frozen=True)
class PoolRecord:
    id: int
    instance_type: str
    zone: str
    region: str

    @property
    def pool(self) -> Pool:
        return Pool(self.instance_type, self.zone)


def ensure_pools(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Ids of (instance type, zone) pairs, inserting the missing ones. Safe under concurrency."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if is_postgresql(session):
        # Two statements whatever the batch size (a page of the world feed names ~10,000 pools).
        types, zones = [t for t, _ in wanted], [z for _, z in wanted]
        session.execute(
            text(
                "INSERT INTO pools (instance_type, zone, region)"
                " SELECT t, z, r FROM unnest(CAST(:types AS text[]), CAST(:zones AS text[]),"
                " CAST(:regions AS text[])) AS k(t, z, r)"
                " WHERE NOT EXISTS (SELECT 1 FROM pools p WHERE p.instance_type = k.t AND p.zone = k.z)"
                " ORDER BY t, z ON CONFLICT DO NOTHING"
            ),
            {"types": types, "zones": zones, "regions": [region_of(z) for z in zones]},
        )
        return pool_ids(session, wanted)
    ids = pool_ids(session, wanted)
    missing = [k for k in wanted if k not in ids]
    for start in range(0, len(missing), _CHUNK):
        rows = [
            {"instance_type": t, "zone": z, "region": region_of(z)}
            for t, z in missing[start : start + _CHUNK]
        ]
        session.execute(sqlite.insert(PoolRow).values(rows).on_conflict_do_nothing())
    if missing:
        ids.update(pool_ids(session, missing))
    return ids


def pool_ids(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Ids of the (instance type, zone) pairs that exist."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if is_postgresql(session):
        rows = session.execute(
            text(
                "SELECT p.instance_type, p.zone, p.id FROM pools p"
                " JOIN unnest(CAST(:types AS text[]), CAST(:zones AS text[])) AS k(t, z)"
                " ON p.instance_type = k.t AND p.zone = k.z"
            ),
            {"types": [t for t, _ in wanted], "zones": [z for _, z in wanted]},
        )
        return {(str(t), str(z)): int(i) for t, z, i in rows}
    out: dict[tuple[str, str], int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        stmt = select(PoolRow.instance_type, PoolRow.zone, PoolRow.id).where(
            tuple_(PoolRow.instance_type, PoolRow.zone).in_(chunk)
        )
        out.update({(t, z): i for t, z, i in session.execute(stmt)})
    return out


def ensure_products(session: Session, names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    ids = product_ids(session, wanted)
    missing = [n for n in wanted if n not in ids]
    if missing:
        insert = postgresql.insert if is_postgresql(session) else sqlite.insert
        session.execute(insert(ProductRow).values([{"name": n} for n in missing]).on_conflict_do_nothing())
        ids.update(product_ids(session, missing))
    return ids


def product_ids(session: Session, names: Iterable[str]) -> dict[str, int]:
    wanted = list(names)
    if not wanted:
        return {}
    stmt = select(ProductRow.name, ProductRow.id).where(ProductRow.name.in_(wanted))
    return {str(n): int(i) for n, i in session.execute(stmt)}


def pools_by_id(session: Session, ids: Iterable[int]) -> dict[int, PoolRecord]:
    wanted = sorted(set(ids))
    out: dict[int, PoolRecord] = {}
    for start in range(0, len(wanted), _CHUNK):
        stmt = select(PoolRow).where(PoolRow.id.in_(wanted[start : start + _CHUNK]))
        for row in session.scalars(stmt):
            out[row.id] = PoolRecord(row.id, row.instance_type, row.zone, row.region)
    return out


def find_pools(session: Session, pools: Iterable[Pool]) -> dict[Pool, PoolRecord]:
    """The stored records of these pools (unknown ones are absent). Lifecycle is ignored."""
    by_key = {(p.instance_type, p.zone): p for p in pools}
    ids = pool_ids(session, by_key)
    records = pools_by_id(session, ids.values())
    return {by_key[k]: records[i] for k, i in ids.items()}


def siblings(session: Session, pools: Iterable[PoolRecord]) -> dict[int, PoolRecord]:
    """Every stored pool of the same instance type and region as one of ``pools`` (them included)."""
    keys = sorted({(p.region, p.instance_type) for p in pools})
    if not keys:
        return {}
    if is_postgresql(session):
        rows = session.execute(
            text(
                "SELECT p.id, p.instance_type, p.zone, p.region FROM pools p"
                " JOIN unnest(CAST(:regions AS text[]), CAST(:types AS text[])) AS k(r, t)"
                " ON p.region = k.r AND p.instance_type = k.t"
            ),
            {"regions": [r for r, _ in keys], "types": [t for _, t in keys]},
        )
        return {int(i): PoolRecord(int(i), str(t), str(z), str(r)) for i, t, z, r in rows}
    out: dict[int, PoolRecord] = {}
    for start in range(0, len(keys), _CHUNK):
        stmt = select(PoolRow).where(
            tuple_(PoolRow.region, PoolRow.instance_type).in_(keys[start : start + _CHUNK])
        )
        for row in session.scalars(stmt):
            out[row.id] = PoolRecord(row.id, row.instance_type, row.zone, row.region)
    return out


def all_pools(session: Session) -> dict[int, PoolRecord]:
    return {
        r.id: PoolRecord(r.id, r.instance_type, r.zone, r.region) for r in session.scalars(select(PoolRow))
    }


def product_names(session: Session) -> Mapping[int, str]:
    return {int(i): str(n) for i, n in session.execute(select(ProductRow.id, ProductRow.name))}
