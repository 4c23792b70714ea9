"""The sandbox's pure parts: the examples made runnable on moto, the timeline's changes, the savings."""

from __future__ import annotations

import copy

import pytest

from spot_operator.api.validation import validate_manifest
from spot_operator.sandbox.changes import changes
from spot_operator.sandbox.ledger import Ledger
from spot_operator.sandbox.manifests import (
    AUTO_SWITCH_EXAMPLE,
    MANUAL_REPLICA_EXAMPLE,
    ManifestError,
    Substitutions,
    adapt,
    examples_dir,
    read_example,
)
from spot_operator.sandbox.snapshot import AgentSeen, InstanceSeen, ReplicaSeen, Snapshot
from spot_operator.sandbox.timeline import Timeline

SUBS = Substitutions(
    image_id="ami-12345678",
    elastic_ip_allocation_id="eipalloc-00000000000000001",
    security_group_id="sg-00000000000000001",
    subnets={"us-east-1a": "subnet-0000000000000000a", "us-east-1b": "subnet-0000000000000000b"},
    target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/spot-sandbox/0123456789abcdef",
)


def test_the_auto_switch_example_keeps_its_template_and_gets_the_sandbox_eip() -> None:
    original = read_example(examples_dir(), AUTO_SWITCH_EXAMPLE)
    before = copy.deepcopy(original)
    doc = adapt(original, SUBS)
    assert original == before
    spec = doc["spec"]
    assert spec["launchTemplate"] == original["spec"]["launchTemplate"]
    assert spec["traffic"]["elasticIpAllocationId"] == SUBS.elastic_ip_allocation_id
    assert spec["termination"]["terminateWaitSeconds"] == SUBS.terminate_wait_seconds
    assert spec["policy"]["rebalanceAction"] == "standby"
    assert validate_manifest(doc) == []


def test_the_manual_replica_example_points_at_what_the_sandbox_created() -> None:
    doc = adapt(read_example(examples_dir(), MANUAL_REPLICA_EXAMPLE), SUBS)
    spec = doc["spec"]
    assert spec["image"] == SUBS.image_id
    assert spec["securityGroups"] == [SUBS.security_group_id]
    assert spec["subnets"] == dict(SUBS.subnets)
    assert spec["traffic"]["targetGroupArns"] == [SUBS.target_group_arn]
    assert spec["instanceProfile"] == "game-server"  # created in moto under the example's name
    assert "rebalanceAction" not in spec.get("policy", {})


def test_an_adapted_example_the_crd_refuses_is_not_applied() -> None:
    subs = Substitutions(**{**SUBS.__dict__, "terminate_wait_seconds": 99999})
    with pytest.raises(ManifestError, match="terminateWaitSeconds"):
        adapt(read_example(examples_dir(), AUTO_SWITCH_EXAMPLE), subs)


def _inst(iid: str, role: str, state: str = "running", pool: str = "m5.large.us-east-1a") -> InstanceSeen:
    return InstanceSeen(iid, "web", role, state, pool, "spot")


def test_changes_name_the_traffic_move_the_termination_and_the_replica_phase() -> None:
    old, new = "i-0000000000000000a", "i-0000000000000000b"
    before = Snapshot(
        instances={old: _inst(old, "primary"), new: _inst(new, "replica")},
        replicas={"r": ReplicaSeen("r", "web", "rebalance", "Ready", new)},
        elastic_ips={"eipalloc-1": old},
    )
    after = Snapshot(
        instances={old: _inst(old, "retiring", "terminated"), new: _inst(new, "primary")},
        replicas={"r": ReplicaSeen("r", "web", "rebalance", "Promoted", new)},
        elastic_ips={"eipalloc-1": new},
    )
    found = {(c.kind, c.subject) for c in changes(before, after)}
    assert found == {
        ("instance-role", new),
        ("instance-terminated", old),
        ("elastic-ip", new),
        ("replica-Promoted", "r"),
    }
    assert changes(after, after) == []


def test_the_ledger_counts_every_live_instance_against_one_on_demand_primary() -> None:
    agent = AgentSeen("web", "auto-switch", "Ready", "i-1", "m5.large.us-east-1a", 0.01, 0.09, 90.0)
    snap = Snapshot(
        agents={"web": agent},
        instances={
            "i-1": _inst("i-1", "primary"),
            "i-2": _inst("i-2", "replica", pool="m5.large.us-east-1b"),
            "i-3": _inst("i-3", "replica", pool="m5.large.us-east-1c"),
            "i-4": _inst("i-4", "retiring", "terminated"),
        },
        prices={"m5.large.us-east-1b": 0.02},
    )
    ledger = Ledger()
    ledger.accrue(snap, 3600)
    book = ledger.agents["web"]
    assert book.on_demand_usd == pytest.approx(0.10)
    assert book.cost_usd == pytest.approx(0.03)  # primary 0.01 (status) + replica 0.02 (store)
    assert book.unpriced_seconds == 3600  # i-3's pool has no price yet
    assert book.saved_usd == pytest.approx(0.07)


def test_timeline_events_say_how_long_after_the_last_thing_done_to_their_agent() -> None:
    timeline = Timeline()
    timeline.add(1.0, "moto-up", "moto")
    timeline.act(2.0, "applied", "applied", "web", "applying it")
    timeline.act(5.0, "interruption-notice", "notice", "web", "the interruption notice")
    moved = timeline.add(5.25, "elastic-ip", "moved", "web")
    assert moved.after == ("the interruption notice", 0.25)
    assert timeline.events[0].after is None
    assert "0.25 s after the interruption notice" in moved.line()
