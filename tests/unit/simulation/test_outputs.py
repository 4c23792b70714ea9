"""What `spotctl simulate` and `spotctl model` write and print, on tiny trace folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from spot_operator.cli.app import _register, app

from .test_simulator import write_trace


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    """Two data sets of three days, so the held-out model of one is trained on the other."""
    rng = np.random.default_rng(5)
    root = tmp_path / "traces"
    for dataset in ("availability/1-node/aws-01-01-2024", "preemption/1-node/aws-03-01-2024"):
        for zone in ("us-east-1a", "us-east-1b"):
            write_trace(root, dataset, zone, "v100_1", (rng.random(432) > 0.2).astype(int).tolist())
    return root


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    _register()
    return CliRunner()


def test_simulate_prints_the_table_and_writes_json_and_plots(
    cli: CliRunner, traces: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = cli.invoke(
        app,
        [
            "simulate",
            "--traces",
            str(traces),
            "--days",
            "0.5",
            "--out",
            str(out),
            "--seed",
            "1",
            "--scenario",
            "aws-01-01-2024",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "All 1 scenarios" in result.output and "ours-rules" in result.output and "held-out" in result.output
    )
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["totals"][0]["policy"] == "on-demand"
    assert doc["totals"][0]["savings_percent"] == 0.0
    (scenario,) = doc["scenarios"]
    assert scenario["model"]["trained_on"] == ["preemption/1-node/aws-03-01-2024"]
    assert all(r["cost_series"] and r["occupancy"] for r in scenario["results"])
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 3 and all((out / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_simulate_refuses_unknown_policies_and_scenarios(
    cli: CliRunner, traces: Path, tmp_path: Path
) -> None:
    bad = cli.invoke(app, ["simulate", "--traces", str(traces), "--policy", "yolo", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "unknown policy" in bad.output
    none = cli.invoke(
        app, ["simulate", "--traces", str(traces), "--scenario", "nope", "--out", str(tmp_path)]
    )
    assert none.exit_code == 2 and "no scenario matches" in none.output
    missing = cli.invoke(app, ["simulate", "--traces", str(tmp_path / "absent"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_model_train_upload_activate_list_rollback(cli: CliRunner, traces: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    model = tmp_path / "m" / "model.ubj"
    trained = cli.invoke(
        app, ["model", "train", "--traces", str(traces), "--out", str(model), "--rounds", "20"]
    )
    assert trained.exit_code == 0, trained.output
    assert "log-loss" in trained.output and "reliability (xgboost)" in trained.output
    meta = json.loads(model.with_suffix(".json").read_text())
    assert "valid_xgboost_auc" in meta["metrics"] and meta["data_from"] < meta["data_to"]

    up = cli.invoke(app, ["model", "upload", str(model), "--registry", str(registry)])
    assert up.exit_code == 0, up.output
    version = up.output.split()[1]
    listed = cli.invoke(app, ["model", "list", "--registry", str(registry)])
    assert version in listed.output
    act = cli.invoke(app, ["model", "activate", version, "--registry", str(registry)])
    assert act.exit_code == 0 and f"active: {version}" in act.output
    back = cli.invoke(app, ["model", "rollback", "--registry", str(registry)])
    assert back.exit_code == 0 and "active: the rules" in back.output
    again = cli.invoke(app, ["model", "rollback", "--registry", str(registry)])
    assert again.exit_code == 1 and "no active model" in again.output
    unknown = cli.invoke(app, ["model", "activate", "v-none", "--registry", str(registry)])
    assert unknown.exit_code == 1

    junk = tmp_path / "junk.ubj"
    junk.write_bytes(b"nope")
    refused = cli.invoke(app, ["model", "upload", str(junk), "--registry", str(registry)])
    assert refused.exit_code == 1 and "upload refused" in refused.output

    sim = cli.invoke(
        app,
        [
            "simulate",
            "--traces",
            str(traces),
            "--days",
            "0.3",
            "--out",
            str(tmp_path / "o"),
            "--registry",
            str(registry),
            "--model-version",
            version,
            "--policy",
            "ours-xgboost",
            "--no-plots",
        ],
    )
    assert sim.exit_code == 0, sim.output
    assert not list((tmp_path / "o").glob("*.png"))
