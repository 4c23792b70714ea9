"""Deleting a SpotAgent: terminate what it launched (a primary only with autoTerminate), release nothing
the user owns (the Elastic IP stays allocated), then let the finalizer go."""

from __future__ import annotations

from spot_operator.planning.actions import TerminateInstance
from spot_operator.planning.facts import Builder, Facts
from spot_operator.planning.model import Role


def plan_deletion(f: Facts, b: Builder) -> bool:
    """Returns True when nothing is left to do."""
    keep_primary = not f.spec.termination.auto_terminate
    pending = False
    for inst in f.live:
        if keep_primary and inst.role is Role.PRIMARY:
            continue
        pending = True
        b.emit(
            TerminateInstance(f"terminate/{inst.instance_id}", inst.instance_id, "SpotAgent deleted"),
            (inst.instance_id,),
        )
    if pending:
        b.requeue(f.settings.wait_poll_seconds)
    return not pending
