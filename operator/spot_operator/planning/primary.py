"""The invariant: exactly one primary. Repair zero (launch or fail over) and two (retire the zombie)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from spot_operator.planning.actions import LaunchInstance, MoveTraffic, SetRole
from spot_operator.planning.backoff import retry_delay
from spot_operator.planning.facts import Builder, Facts
from spot_operator.planning.failover import open_failover
from spot_operator.planning.model import Role, SwitchObject
from spot_operator.planning.pools import initial_candidates
from spot_operator.planning.switching import carries_primary, committed_switch


def plan_primary(f: Facts, b: Builder, switches: Sequence[SwitchObject]) -> SwitchObject | None:
    """Returns an emergency switch when it had to open one."""
    if committed_switch(switches, b):
        return None  # a cutover owns the roles until it is done
    primaries = f.primaries
    if len(primaries) > 1:
        _retire_zombies(f, b)
        return None
    if len(primaries) == 1:
        primary = primaries[0]
        if f.has_traffic and f.view.serving != primary.instance_id and f.healthy(primary):
            b.emit(
                MoveTraffic(
                    f"traffic/{primary.instance_id}/{primary.epoch}", primary.instance_id, f.view.serving
                )
            )
        return None
    if carries_primary(switches, b):
        return None
    lost = f.view.last_primary_id
    if lost is not None:
        return open_failover(f, b, switches, lost, f"primary {lost} is gone")
    _launch_first(f, b)
    return None


def _retire_zombies(f: Facts, b: Builder) -> None:
    """Keep the rightful primary (running, highest epoch); move traffic to it first, then retire the rest."""
    keep, *zombies = f.primaries
    if f.has_traffic and f.view.serving != keep.instance_id:
        if f.healthy(keep):
            b.emit(MoveTraffic(f"traffic/{keep.instance_id}/{keep.epoch}", keep.instance_id, f.view.serving))
        else:
            b.requeue(f.settings.wait_poll_seconds)
        return
    for zombie in zombies:
        if b.emit(
            SetRole(f"role/{zombie.instance_id}/retiring", zombie.instance_id, Role.RETIRING),
            (zombie.instance_id,),
        ):
            b.event(
                "ZombiePrimary",
                f"{zombie.instance_id} also claimed to be primary; retiring it "
                f"in favour of {keep.instance_id}",
                warning=True,
            )


def _launch_first(f: Facts, b: Builder) -> None:
    epoch = f.max_epoch + 1
    key = f"primary/{epoch}"
    failure = f.view.launch_failures.get(key)
    attempt = 0
    if failure is not None:
        attempt = failure.attempts
        wait = retry_delay(f.settings.launch_retry_seconds, failure.attempts)
        retry_at = failure.at + timedelta(seconds=wait)
        if f.now < retry_at:
            b.requeue((retry_at - f.now).total_seconds())
            return
    pools = initial_candidates(f.spec, f.market)
    if not pools:
        b.requeue(f.settings.launch_retry_seconds)
        return
    if b.emit(LaunchInstance(key, pools, Role.PRIMARY, epoch=epoch, attempt=attempt, emergency=True)):
        b.event("LaunchingPrimary", f"launching the primary in {pools[0]}")
