"""What the sandbox does once the operator runs: apply the examples, wait until both agents serve, report
a rebalance recommendation, then an interruption notice, and check the failover where it happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from spot_agent.protocol import NoticeKind
from spot_operator.adapters.kube import KubeClient, resource_path
from spot_operator.api.common import GROUP, VERSION
from spot_operator.sandbox.fleet import Fleet
from spot_operator.sandbox.manifests import Manifest
from spot_operator.sandbox.services import SandboxFailure
from spot_operator.sandbox.snapshot import GONE_STATES, Snapshot
from spot_operator.sandbox.watch import Watch

NAMESPACE = "default"
SERVING_WITHIN = 45.0
STEP_WITHIN = 30.0


@dataclass
class Outcome:
    """What the scenario established, read from moto and the Kubernetes API."""

    auto_agent: str = ""
    manual_agent: str = ""
    elastic_ip: str = ""
    old_primary: str | None = None
    promoted: str | None = None
    standby: str | None = None
    notice_to_elastic_ip_seconds: float | None = None
    switch: str | None = None


def serving(snap: Snapshot, agent: str) -> bool:
    seen = snap.agents.get(agent)
    return seen is not None and seen.phase == "Ready" and seen.primary_id is not None


def priced(snap: Snapshot, agent: str) -> bool:
    return serving(snap, agent) and snap.agents[agent].savings_percent is not None


def failed_over(snap: Snapshot, agent: str, old: str, new: str) -> bool:
    """The old primary gone, ``new`` the serving primary, and the switch that did it Completed."""
    gone = snap.instances.get(old)
    done = [w for w in snap.switches.values() if w.agent == agent and w.old_instance_id == old]
    return (
        gone is not None
        and gone.state in GONE_STATES
        and serving(snap, agent)
        and snap.agents[agent].primary_id == new
        and any(w.phase == "Completed" for w in done)
    )


@dataclass
class Scenario:
    watch: Watch
    kube: KubeClient
    fleet: Fleet
    agent_api: str
    outcome: Outcome

    async def run(self, auto_switch: Manifest, manual_replica: Manifest) -> None:
        out, watch = self.outcome, self.watch
        auto, manual = _name(auto_switch), _name(manual_replica)
        out.auto_agent, out.manual_agent = auto, manual
        for doc in (auto_switch, manual_replica):
            await self.kube.create(resource_path(GROUP, VERSION, "spotagents", NAMESPACE), doc)
            text = f"SpotAgent applied ({doc['spec']['mode']})"
            watch.timeline.act(watch.clock(), "applied", text, _name(doc), "applying it")

        snap, _ = await watch.until(
            "both SpotAgents Ready with a priced primary, and the manual-replica standby Ready",
            lambda s: priced(s, auto) and priced(s, manual) and _standby(s, manual) is not None,
            within=SERVING_WITHIN,
        )
        out.standby = _standby(snap, manual)
        old = out.old_primary = snap.agents[auto].primary_id or ""

        # A rebalance recommendation: auto-switch launches a replica in the safest other pool.
        await self._notify(auto, old, NoticeKind.REBALANCE)
        snap, _ = await watch.until(
            "the rebalance replica Ready", lambda s: _rebalance_replica(s, auto) is not None, STEP_WITHIN
        )
        new = out.promoted = _rebalance_replica(snap, auto) or ""

        # The 2-minute notice: the Elastic IP moves to the Ready replica, the old primary is terminated.
        noticed = await self._notify(auto, old, NoticeKind.INTERRUPTION)
        eip = out.elastic_ip
        _, moved = await watch.until(
            f"the Elastic IP to move to {new}", lambda s: s.elastic_ips.get(eip) == new, STEP_WITHIN
        )
        out.notice_to_elastic_ip_seconds = moved - noticed
        snap, _ = await watch.until(
            f"{old} terminated and the failover Completed",
            lambda s: failed_over(s, auto, old, new),
            STEP_WITHIN,
        )
        out.switch = next(
            w.name for w in snap.switches.values() if w.old_instance_id == old and w.phase == "Completed"
        )
        check(snap, out)

    async def _notify(self, agent: str, instance_id: str, kind: NoticeKind) -> float:
        at = self.watch.clock()
        answer = await self.fleet.notify(
            self.agent_api, NAMESPACE, agent, instance_id, kind, datetime.now(UTC)
        )
        if not answer.ok:
            refused = f"{answer.status} {answer.body}"
            raise SandboxFailure(f"the agent API refused the {kind.value} notice: {refused}")
        what = "rebalance recommendation" if kind is NoticeKind.REBALANCE else "interruption notice"
        detail = "" if kind is NoticeKind.REBALANCE else " (terminate, in 2 minutes)"
        text = f"{what}{detail} for {instance_id}, reported by its agent"
        self.watch.timeline.act(at, f"{kind.value}-notice", text, agent, f"the {what}", instance_id)
        return at


def check(snap: Snapshot, outcome: Outcome) -> None:
    """The invariants, read from moto: one primary per agent, the Elastic IP on the promoted instance."""
    for agent in (outcome.auto_agent, outcome.manual_agent):
        primaries = snap.live(agent, "primary")
        if len(primaries) != 1:
            raise SandboxFailure(f"{agent} has {len(primaries)} live primaries in EC2, not exactly one")
    if snap.elastic_ips.get(outcome.elastic_ip) != outcome.promoted:
        raise SandboxFailure(f"the Elastic IP is not on the promoted instance {outcome.promoted}")


def _name(doc: Manifest) -> str:
    return str(doc["metadata"]["name"])


def _standby(snap: Snapshot, agent: str) -> str | None:
    return next((r.instance_id for r in snap.replicas_of(agent, "manual") if r.phase == "Ready"), None)


def _rebalance_replica(snap: Snapshot, agent: str) -> str | None:
    return next((r.instance_id for r in snap.replicas_of(agent, "rebalance") if r.phase == "Ready"), None)
