"""`spotctl sandbox` end to end, in process (``run_sandbox`` is what the command runs): a moto server, the
Kubernetes API emulation, SQLite and the real operator; a rebalance recommendation and an interruption
notice through the agent API; then everything stopped. The outcome is checked where it happened: moto's
instances and Elastic IP (read before moto stopped), the store's rows, the processes left."""

from __future__ import annotations

import psutil
import pytest

from spot_operator.sandbox.runner import SandboxResult, run_sandbox
from spot_operator.sandbox.snapshot import GONE_STATES
from spot_operator.sandbox.timeline import Event

pytestmark = pytest.mark.timeout(180)


def position(result: SandboxResult, kind: str, agent: str | None = None, subject: str | None = None) -> int:
    for index, event in enumerate(result.events):
        if event.kind == kind and agent in (None, event.agent) and subject in (None, event.subject):
            return index
    raise AssertionError(f"no {kind} event for {agent or 'anyone'} {subject or ''}: {result.events}")


async def test_the_sandbox_fails_over_on_the_interruption_notice_and_stops_everything() -> None:
    shown: list[Event] = []
    result = await run_sandbox(show=shown.append)

    assert result.ok, f"{result.error}\n{result.log_tail}"
    assert result.operator_exit_code == 0
    assert result.seconds < 120
    assert shown == result.events  # printed live, as they happened
    out = result.outcome
    auto, manual = out.auto_agent, out.manual_agent
    assert (auto, manual) == ("build-server", "game-server")  # the examples, applied

    # The timeline, in order: services up, both agents served, rebalance, interruption, failover, stop.
    order = [
        position(result, "moto-up"),
        position(result, "kube-up"),
        position(result, "store-up"),
        position(result, "operator-ready"),
        position(result, "applied", auto),
        position(result, "primary", auto, out.old_primary),
        position(result, "agent-Ready", auto),
        position(result, "rebalance-notice", auto),
        position(result, "replica-Ready", auto),
        position(result, "interruption-notice", auto),
        position(result, "elastic-ip", auto, out.promoted),
        position(result, "instance-terminated", auto, out.old_primary),
        position(result, "switch-Completed", auto),
        position(result, "operator-stopped"),
        position(result, "moto-down"),
        position(result, "stopped"),
    ]
    assert order == sorted(order)
    assert position(result, "applied", manual) < position(result, "replica-Ready", manual)
    assert out.notice_to_elastic_ip_seconds is not None and 0 <= out.notice_to_elastic_ip_seconds < 10

    # What moto said before it stopped: the Elastic IP on the promoted replica, one primary each,
    # the old primary terminated.
    final = result.final
    assert out.promoted is not None and out.promoted != out.old_primary
    assert final.elastic_ips[out.elastic_ip] == out.promoted
    assert [i.instance_id for i in final.live(auto, "primary")] == [out.promoted]
    assert len(final.live(manual, "primary")) == 1
    assert final.instances[out.old_primary or ""].state in GONE_STATES
    assert final.agents[auto].primary_id == out.promoted
    assert final.switches[out.switch or ""].reason == "emergency"

    # The store got the price history and the switch; savings were accrued.
    assert result.store is not None
    assert result.store.price_observations > 0
    assert result.store.switches >= 1
    assert result.ledger.agents[auto].on_demand_usd > 0

    # Everything it started is gone.
    assert result.moto_pid is not None and not psutil.pid_exists(result.moto_pid)
    assert result.workdir is not None and not result.workdir.exists()
