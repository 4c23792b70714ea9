"""A throwaway kopf operator for the emulation's smoke test: it records every handler call it gets.

Loaded with ``tests.fakes.kube.load_handlers`` into a fresh registry, so its decorators name no registry.
"""

from __future__ import annotations

from typing import Any

import kopf

RESOURCE = ("spotoptimizer.io", "v1alpha1", "spotagents")
CALLS: list[tuple[str, str, Any]] = []  # (handler, object name, what it saw)


@kopf.on.create(*RESOURCE, id="smoke-create")
def created(name: str, meta: kopf.Meta, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    CALLS.append(("create", name, meta.get("generation")))
    patch.status["phase"] = "Created"
    kopf.info(body, reason="SmokeCreated", message=f"{name} seen")  # a Kubernetes Event, POSTed by kopf


@kopf.on.update(*RESOURCE, id="smoke-update")
def updated(name: str, meta: kopf.Meta, diff: kopf.Diff, **_: Any) -> None:
    CALLS.append(("update", name, (meta.get("generation"), [list(change.field) for change in diff])))


@kopf.on.timer(*RESOURCE, id="smoke-timer", interval=0.3)
def ticked(name: str, patch: kopf.Patch, **_: Any) -> None:
    CALLS.append(("timer", name, None))
    patch.status["ticked"] = True


@kopf.on.delete(*RESOURCE, id="smoke-delete")
def deleted(name: str, **_: Any) -> None:
    CALLS.append(("delete", name, None))
