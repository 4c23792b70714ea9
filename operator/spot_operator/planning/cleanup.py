"""Instances nobody needs any more: retired primaries and replicas whose object is gone or finished."""

from __future__ import annotations

from collections.abc import Sequence

from spot_operator.api.replica import REPLICA_FINAL_PHASES
from spot_operator.api.switchrequest import SWITCH_FINAL_PHASES
from spot_operator.planning.actions import TerminateInstance
from spot_operator.planning.facts import COMMITTED_PHASES, Builder, Facts
from spot_operator.planning.model import ReplicaObject, Role, SwitchObject

# An instance whose owning object is not (yet) known is left alone this long: after a restart the
# object that launched it may still be on its way back (an emergency switch is re-opened from the
# persisted notice and adopts it through its launch key).
ORPHAN_GRACE_SECONDS = 300.0


def plan_cleanup(
    f: Facts, b: Builder, replicas: Sequence[ReplicaObject], switches: Sequence[SwitchObject]
) -> None:
    replica_by_purpose = {r.purpose: r for r in replicas}
    switch_by_purpose = {s.purpose: s for s in switches}
    draining = {
        s.status.old_instance_id
        for s in switches
        if (b.switch_status[s.name].phase if s.name in b.switch_status else s.status.phase)
        in COMMITTED_PHASES
    }
    for inst in f.live:
        if b.touched(inst.instance_id):
            continue
        why = None
        if inst.role is Role.RETIRING:
            if inst.instance_id in draining or not f.spec.termination.auto_terminate:
                continue
            if f.has_traffic and f.view.serving == inst.instance_id:
                continue  # never terminate what still serves
            why = "retired primary"
        elif inst.role is Role.REPLICA:
            rep = replica_by_purpose.get(inst.purpose)
            sw = switch_by_purpose.get(inst.purpose)
            if rep is not None:
                rphase = b.replica_phase(rep)
                if rphase in REPLICA_FINAL_PHASES or rep.deleting:
                    why = f"Replica {rep.name} is {rphase.value if rphase else 'deleted'}"
            elif sw is not None:
                sphase = b.switch_status[sw.name].phase if sw.name in b.switch_status else sw.status.phase
                if sphase in SWITCH_FINAL_PHASES:
                    why = f"SwitchRequest {sw.name} is {sphase.value}"
            elif (f.now - inst.launched_at).total_seconds() > ORPHAN_GRACE_SECONDS:
                why = f"orphan: nothing claims it ({inst.purpose or 'no purpose tag'})"
            else:
                b.requeue(ORPHAN_GRACE_SECONDS)
        if why is not None and b.emit(
            TerminateInstance(f"terminate/{inst.instance_id}", inst.instance_id, why), (inst.instance_id,)
        ):
            b.event("Terminating", f"{inst.instance_id}: {why}")
