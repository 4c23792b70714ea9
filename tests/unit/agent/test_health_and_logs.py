from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from spot_agent.health import combine, read_sync_progress
from spot_agent.logs import JsonFormatter, setup_logging
from spot_agent.protocol import Health


def test_sync_progress(tmp_path: Path) -> None:
    assert read_sync_progress(None) == (100, "")
    path = tmp_path / "progress"
    assert read_sync_progress(path)[0] == 0
    assert "does not exist" in read_sync_progress(path)[1]
    path.write_text("42\n")
    assert read_sync_progress(path) == (42, "")
    path.write_text("150")
    assert read_sync_progress(path) == (100, "")
    path.write_text("lots")
    progress, problem = read_sync_progress(path)
    assert progress == 0
    assert "'lots'" in problem


def test_combine_takes_the_worst_and_lists_every_problem() -> None:
    assert combine(Health.OK, "", "", "") == (Health.OK, "")
    assert combine(Health.OK, "", "IMDS down", "") == (Health.DEGRADED, "IMDS down")
    health, detail = combine(Health.FAILING, "check exited 2", "IMDS down", "no file")
    assert health is Health.FAILING
    assert detail == "check exited 2; IMDS down; no file"


def test_json_logs_carry_extra_fields() -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    try:
        logging.getLogger("spot_agent.test").warning("notice", extra={"kind": "rebalance", "seq": 3})
        logging.getLogger("spot_agent.test").debug("hidden")
    finally:
        setup_logging("WARNING", io.StringIO())
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "notice"
    assert entry["level"] == "warning"
    assert entry["kind"] == "rebalance"
    assert entry["seq"] == 3
    assert entry["logger"] == "spot_agent.test"


def test_exceptions_are_kept() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in entry["exception"]
