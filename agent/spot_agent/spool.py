"""An on-disk spool: every report is written here before it is sent, and removed only once the operator
answered 2xx (delivered) or a definitive 4xx (it will never be accepted). Nothing is lost while the
operator is unreachable or the agent restarts.

One file per report, named by a sequence number so reports go out in the order they were made. Writes
are atomic and durable: a temporary file is written and fsynced, renamed into place, and the directory
fsynced. Heartbeats are snapshots, so a new one replaces any heartbeat still waiting; notices and hook
results are never dropped or merged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from spot_agent.protocol import HeartbeatReport, HookReport, NoticeReport, Report

log = logging.getLogger(__name__)

SUFFIX = ".json"
TMP_PREFIX = ".tmp-"
LOCK_NAME = ".lock"
CORRUPT_DIR = "corrupt"
TYPES: dict[str, type[HeartbeatReport] | type[NoticeReport] | type[HookReport]] = {
    "heartbeat": HeartbeatReport,
    "notice": NoticeReport,
    "hook": HookReport,
}
TYPE_NAMES = {cls: name for name, cls in TYPES.items()}


class SpoolError(Exception):
    pass


@dataclass(frozen=True)
class Spooled:
    seq: int
    path: Path | None  # None: the disk refused it; held in memory only
    report: Report

    @property
    def kind(self) -> str:
        return TYPE_NAMES[type(self.report)]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode(report: Report) -> bytes:
    envelope = {
        "type": TYPE_NAMES[type(report)],
        "spooledAt": datetime.now(UTC).isoformat(),
        "report": report.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def decode(data: bytes) -> Report:
    envelope = json.loads(data)
    if not isinstance(envelope, dict) or envelope.get("type") not in TYPES:
        raise ValueError("not a spooled report (no known 'type')")
    return TYPES[envelope["type"]].model_validate(envelope["report"])


class Spool:
    """Single-writer: the directory is locked for the lifetime of the object (one agent per spool)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {directory}: {exc.strerror}") from None
        self._lock: IO[bytes] | None = (directory / LOCK_NAME).open("ab")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise SpoolError(f"spool directory {directory} is in use by another spot-agent") from None
        self._entries: list[Spooled] = self._load()
        self._next = (self._entries[-1].seq + 1) if self._entries else 1

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self) -> list[Spooled]:
        entries = []
        for path in self.directory.iterdir():
            if path.name.startswith(TMP_PREFIX):
                path.unlink(missing_ok=True)  # a write that never completed: it was never acknowledged
                continue
            if not path.name.endswith(SUFFIX):
                continue
            stem = path.name.split(".", 1)[0]
            try:
                seq = int(stem)
                report = decode(path.read_bytes())
            except (ValueError, ValidationError, OSError) as exc:
                self._quarantine(path, exc)
                continue
            entries.append(Spooled(seq, path, report))
        entries.sort(key=lambda e: e.seq)
        return entries

    def _quarantine(self, path: Path, exc: Exception) -> None:
        target = self.directory / CORRUPT_DIR
        target.mkdir(exist_ok=True)
        os.replace(path, target / path.name)
        log.error(
            "spooled report is unreadable; moved aside",
            extra={"file": path.name, "moved_to": str(target), "error": str(exc)[:500]},
        )

    def put(self, report: Report) -> Spooled:
        """Write the report durably, then (for a heartbeat) drop older heartbeats still waiting."""
        seq = self._next
        self._next += 1
        name = f"{seq:012d}.{TYPE_NAMES[type(report)]}{SUFFIX}"
        final = self.directory / name
        tmp = self.directory / f"{TMP_PREFIX}{name}"
        path: Path | None = final
        try:
            self._write(tmp, final, encode(report))
        except OSError as exc:
            # A full or read-only disk must not stop a notice: keep it in memory, in its place in line.
            path = None
            log.error(
                "cannot write to the spool; report kept in memory only (lost if the agent stops)",
                extra={"spool": str(self.directory), "error": exc.strerror or str(exc), "seq": seq},
            )
        entry = Spooled(seq, path, report)
        if isinstance(report, HeartbeatReport):
            for old in [e for e in self._entries if isinstance(e.report, HeartbeatReport)]:
                self.remove(old)
        self._entries.append(entry)
        return entry

    def _write(self, tmp: Path, final: Path, data: bytes) -> None:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def pending(self) -> list[Spooled]:
        return list(self._entries)

    def peek(self) -> Spooled | None:
        return self._entries[0] if self._entries else None

    def remove(self, entry: Spooled) -> None:
        with contextlib.suppress(ValueError):  # already gone (a replaced heartbeat)
            self._entries.remove(entry)
        if entry.path is not None and entry.path.exists():
            entry.path.unlink(missing_ok=True)
            _fsync_dir(self.directory)

    def __len__(self) -> int:
        return len(self._entries)
