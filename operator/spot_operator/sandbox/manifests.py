"""The examples the sandbox applies, made runnable on a moto server. Pure: documents in, documents out.

The sandbox applies ``examples/spotagent-auto-switch.yaml`` and ``examples/spotagent-manual-replica.yaml``
as they are, except for what must point at resources the sandbox created in moto or must be shorter for a
demo that runs in a minute:

- every SpotAgent: ``termination.terminateWaitSeconds`` becomes ``terminate_wait_seconds`` (2);
- an Elastic IP allocation id: the one the sandbox allocated;
- an ``image``: an AMI moto knows; ``securityGroups``: the group the sandbox created; ``subnets``: moto's
  default subnet in each listed zone; ``targetGroupArns``: the target group the sandbox created;
- auto-switch: ``policy.rebalanceAction: standby``, so the replica launched on the rebalance recommendation
  waits for the interruption notice, and the sandbox shows the failover onto it (the example's default,
  ``replace``, would move onto it at once).

The launch template and instance profile the examples name are created in moto under the same names. The
result is validated against the CRD schema and its CEL rules, so the sandbox never applies what a real API
server would refuse.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spot_operator.api.validation import validate_manifest

AUTO_SWITCH_EXAMPLE = "spotagent-auto-switch.yaml"
MANUAL_REPLICA_EXAMPLE = "spotagent-manual-replica.yaml"
EXAMPLES = (AUTO_SWITCH_EXAMPLE, MANUAL_REPLICA_EXAMPLE)

Manifest = dict[str, Any]


class ManifestError(ValueError):
    """An example the sandbox cannot use: missing, or invalid once adapted."""


@dataclass(frozen=True)
class Substitutions:
    """What the sandbox created in moto, to put in place of the examples' placeholders."""

    image_id: str
    elastic_ip_allocation_id: str
    security_group_id: str
    subnets: Mapping[str, str]  # zone -> moto's default subnet there
    target_group_arn: str
    terminate_wait_seconds: int = 2


def examples_dir() -> Path:
    """The repository's ``examples/`` (operator/spot_operator/sandbox/ is three levels below the root)."""
    return Path(__file__).resolve().parents[3] / "examples"


def read_example(directory: Path, name: str) -> Manifest:
    path = directory / name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read the example {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "SpotAgent":
        raise ManifestError(f"{path} is not a SpotAgent manifest")
    return doc


def adapt(doc: Mapping[str, Any], subs: Substitutions) -> Manifest:
    """The example with the sandbox's substitutions (see the module docstring); ``doc`` is not changed."""
    out: Manifest = copy.deepcopy(dict(doc))
    spec: dict[str, Any] = out.setdefault("spec", {})
    spec.setdefault("termination", {})["terminateWaitSeconds"] = subs.terminate_wait_seconds
    if "image" in spec:
        spec["image"] = subs.image_id
    if spec.get("securityGroups"):
        spec["securityGroups"] = [subs.security_group_id]
    if spec.get("subnets"):
        spec["subnets"] = {zone: subs.subnets[zone] for zone in spec["subnets"] if zone in subs.subnets}
    traffic = spec.get("traffic") or {}
    if traffic.get("elasticIpAllocationId"):
        traffic["elasticIpAllocationId"] = subs.elastic_ip_allocation_id
    if traffic.get("targetGroupArns"):
        traffic["targetGroupArns"] = [subs.target_group_arn]
    if spec.get("mode", "auto-switch") == "auto-switch":
        spec.setdefault("policy", {})["rebalanceAction"] = "standby"
    problems = validate_manifest(out)
    if problems:
        name = out.get("metadata", {}).get("name", "?")
        raise ManifestError(f"SpotAgent {name} is invalid once adapted: " + "; ".join(map(str, problems)))
    return out


def needed_names(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The launch template and the instance profile an example names (the sandbox creates both)."""
    spec = doc.get("spec") or {}
    template = (spec.get("launchTemplate") or {}).get("name")
    return template, spec.get("instanceProfile")
