"""docs/reference.md is what the models and metrics generate, and it says what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from spot_operator import metrics
from spot_operator.api.crdgen import CRDS, model_schema
from spot_operator.api.docgen import main, metric_docs, render, walk
from spot_operator.api.spotagent import SpotAgentSpec, Termination

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "docs" / "reference.md"


def test_committed_reference_is_in_sync() -> None:
    assert REFERENCE.read_text() == render(), "run: python -m spot_operator.api.docgen docs/reference.md"
    assert main(["--check", str(REFERENCE)]) == 0


def test_check_mode_reports_a_stale_or_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text(render().replace("spot_optimizer_switch_total", "spot_optimizer_switches"))
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--check", str(tmp_path / "missing.md")]) == 1
    assert "missing" in capsys.readouterr().err
    assert main([str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0


def test_a_field_row_carries_json_name_type_default_constraints_and_description() -> None:
    text = render()
    description = Termination.model_fields["terminate_wait_seconds"].description
    assert description
    row = next(line for line in text.splitlines() if line.startswith("| `termination.terminateWaitSeconds`"))
    assert row == (
        "| `termination.terminateWaitSeconds` | `integer` | `30` | ≥ 0; ≤ 3600 | " + description + " |"
    )
    mode = next(line for line in text.splitlines() if line.startswith("| `mode` |"))
    assert "`auto-switch`" in mode and "one of `auto-switch`, `manual-replica`, `off`" in mode
    region = next(line for line in text.splitlines() if line.startswith("| `region` |"))
    assert "required" in region and "\\|-iso" in region  # a pipe in a pattern does not split the cell
    assert "- Rule on the whole spec: spec is immutable (`self == oldSelf`)" in text


def test_every_described_field_of_every_kind_appears() -> None:
    text = render()
    for info in CRDS:
        assert f"## {info.kind}\n" in text
        for part in (info.spec_model, info.status_model):
            for doc in walk(model_schema(part)):
                assert f"| `{doc.path}` | `{doc.type}` |" in text
                if doc.description:
                    assert " ".join(doc.description.split()).replace("|", "\\|") in text


def test_nested_list_fields_are_walked() -> None:
    paths = [doc.path for doc in walk(model_schema(SpotAgentSpec))]
    assert "dataVolumes[].volumeId" in paths
    assert "launchTemplate.version" in paths


def test_every_registered_metric_is_listed_with_type_labels_and_help() -> None:
    docs = {doc.name: doc for doc in metric_docs()}
    families = {family.name: family for family in metrics.REGISTRY.collect()}
    suffix = {"counter": "_total", "info": "_info"}
    assert {name + suffix.get(f.type, "") for name, f in families.items()} <= set(docs)
    switches = docs["spot_optimizer_switch_total"]
    assert (switches.type, switches.labels) == ("counter", ("reason", "result"))
    assert switches.help == metrics.SWITCHES._documentation
    assert docs["spot_optimizer_failover_duration_seconds"].type == "histogram"
    assert (
        "| `spot_optimizer_failover_duration_seconds` | histogram | `path` | "
        "From the notice arriving to the new primary serving. |"
    ) in render()
