from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from spot_agent.protocol import Health, HeartbeatReport, HookReport, NoticeKind, NoticeReport, Report
from spot_agent.spool import Spool, SpoolError

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
IID = "i-0123456789abcdef0"


def notice(n: int) -> NoticeReport:
    return NoticeReport(
        instance_id=IID, kind=NoticeKind.REBALANCE, notice_time=T, idempotency_key=f"notice-{n:06d}"
    )


def hook(n: int) -> HookReport:
    return HookReport(
        instance_id=IID,
        hook="pre-stop",
        started_at=T,
        duration_seconds=0.5,
        exit_code=0,
        idempotency_key=f"hook-{n:08d}",
    )


def heartbeat(n: int) -> HeartbeatReport:
    return HeartbeatReport(
        instance_id=IID, agent_version="0.1.0", health=Health.OK, sent_at=T, idempotency_key=f"beat-{n:08d}"
    )


def keys(spool: Spool) -> list[str]:
    return [e.report.idempotency_key for e in spool.pending()]


def test_reports_survive_a_restart_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for report in (notice(1), hook(2), notice(3)):
            spool.put(report)
    with Spool(tmp_path) as again:
        assert keys(again) == ["notice-000001", "hook-00000002", "notice-000003"]
        assert again.pending()[1].report == hook(2)  # the whole report, not just its key
        head = again.peek()
        assert head is not None
        again.remove(head)
        again.put(notice(4))
    with Spool(tmp_path) as third:
        assert keys(third) == ["hook-00000002", "notice-000003", "notice-000004"]
        seqs = [e.seq for e in third.pending()]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 3


def test_a_new_heartbeat_replaces_the_waiting_one(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.put(heartbeat(1))
        spool.put(notice(1))
        spool.put(heartbeat(2))
        assert keys(spool) == ["notice-000001", "beat-00000002"]
        assert len(list(tmp_path.glob("*.json"))) == 2


def test_half_written_files_are_discarded(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.put(notice(1))
    (tmp_path / ".tmp-000000000002.notice.json").write_text('{"type": "notice", "rep')
    with Spool(tmp_path) as again:
        assert keys(again) == ["notice-000001"]
    assert not list(tmp_path.glob(".tmp-*"))


def test_unreadable_files_are_moved_aside_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path) as spool:
        spool.put(notice(1))
    (tmp_path / "000000000002.notice.json").write_text("garbage")
    (tmp_path / "000000000003.notice.json").write_text('{"type": "notice", "report": {"kind": "x"}}')
    with Spool(tmp_path) as again:
        assert keys(again) == ["notice-000001"]
        again.put(notice(4))
        assert again.pending()[-1].seq == 2  # numbering continues after the readable files
    assert sorted(p.name for p in (tmp_path / "corrupt").iterdir()) == [
        "000000000002.notice.json",
        "000000000003.notice.json",
    ]
    assert sum("unreadable" in r.getMessage() for r in caplog.records) == 2


def test_one_agent_per_spool(tmp_path: Path) -> None:
    with Spool(tmp_path), pytest.raises(SpoolError, match="in use by another spot-agent"):
        Spool(tmp_path)
    Spool(tmp_path).close()  # free again once closed


def test_writes_are_fsynced_before_they_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr("spot_agent.spool.os.fsync", fsync)
    with Spool(tmp_path) as spool:
        spool.put(notice(1))
        assert len(synced) == 2  # the file, then the directory after the rename
        spool.remove(spool.pending()[0])
        assert len(synced) == 3  # the directory after the unlink


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="cannot create spool directory"):
        Spool(blocker / "spool")


class SpoolMachine(RuleBasedStateMachine):
    """Any sequence of puts, deliveries and restarts: what is pending is exactly what was put and not
    yet delivered (heartbeats: only the newest), in the order it was put."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-"))
        self.spool = Spool(self.dir)
        self.model: list[str] = []
        self.delivered: list[str] = []
        self.counter = 0

    @initialize()
    def start(self) -> None:
        assert self.spool.pending() == []

    def _put(self, report: Report) -> None:
        if isinstance(report, HeartbeatReport):
            self.model = [k for k in self.model if not k.startswith("beat-")]
        self.spool.put(report)
        self.model.append(report.idempotency_key)

    @rule(kind=st.sampled_from(["notice", "hook", "heartbeat"]))
    def put(self, kind: str) -> None:
        self.counter += 1
        report: Report
        if kind == "notice":
            report = notice(self.counter)
        elif kind == "hook":
            report = hook(self.counter)
        else:
            report = heartbeat(self.counter)
        self._put(report)

    @precondition(lambda self: bool(self.model))
    @rule()
    def deliver_head(self) -> None:
        head = self.spool.peek()
        assert head is not None
        self.spool.remove(head)
        self.delivered.append(self.model.pop(0))

    @rule()
    def restart(self) -> None:
        self.spool.close()
        self.spool = Spool(self.dir)

    @invariant()
    def pending_matches(self) -> None:
        assert keys(self.spool) == self.model
        assert len(set(self.model)) == len(self.model)
        assert not set(self.delivered) & set(self.model)

    def teardown(self) -> None:
        self.spool.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestSpoolMachine = SpoolMachine.TestCase
TestSpoolMachine.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)


def test_a_full_disk_keeps_reports_in_memory_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real_open = os.open

    def full(path: str, flags: int, mode: int = 0o777) -> int:
        if ".tmp-" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, mode)

    with Spool(tmp_path) as spool:
        spool.put(notice(1))
        monkeypatch.setattr("spot_agent.spool.os.open", full)
        kept = spool.put(notice(2))
        monkeypatch.undo()
        spool.put(notice(3))
        assert kept.path is None
        assert keys(spool) == ["notice-000001", "notice-000002", "notice-000003"]
        spool.remove(spool.pending()[1])  # delivered from memory
        assert keys(spool) == ["notice-000001", "notice-000003"]
    assert not list(tmp_path.glob(".tmp-*"))
