"""The sandbox's timeline: every event with the seconds since the start and, where it answers something
the sandbox did (applied a SpotAgent, reported a notice), how long after that it came."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from spot_operator.sandbox.changes import Change


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the sandbox started
    kind: str
    agent: str
    text: str
    subject: str = ""
    after: tuple[str, float] | None = None  # (what the sandbox did, seconds since)

    def line(self) -> str:
        who = f"{self.agent:<13}" if self.agent else " " * 13
        note = f"  ({self.after[1]:.2f} s after {self.after[0]})" if self.after else ""
        return f"{self.at:7.2f} s  {who} {self.text}{note}"


@dataclass
class Timeline:
    """Events in order; ``show`` sees each as it is added (the CLI prints it)."""

    show: Callable[[Event], None] = lambda event: None
    events: list[Event] = field(default_factory=list)
    marks: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # agent -> (at, what)

    def add(self, at: float, kind: str, text: str, agent: str = "", subject: str = "") -> Event:
        event = Event(at, kind, agent, text, subject, self._after(agent, at))
        self.events.append(event)
        self.show(event)
        return event

    def act(self, at: float, kind: str, text: str, agent: str, label: str, subject: str = "") -> Event:
        """Something the sandbox did to ``agent``: its later events say how long after ``label`` they came."""
        event = Event(at, kind, agent, text, subject)
        self.events.append(event)
        self.show(event)
        self.marks.setdefault(agent, []).append((at, label))
        return event

    def change(self, at: float, change: Change) -> Event:
        return self.add(at, change.kind, change.text, change.agent, change.subject)

    def _after(self, agent: str, at: float) -> tuple[str, float] | None:
        marks = [m for m in self.marks.get(agent, ()) if m[0] <= at]
        if not marks:
            return None
        when, what = marks[-1]
        return what, at - when

    def first(self, kind: str, agent: str | None = None, subject: str | None = None) -> Event | None:
        for event in self.events:
            if event.kind != kind:
                continue
            if agent is not None and event.agent != agent:
                continue
            if subject is not None and event.subject != subject:
                continue
            return event
        return None

    def kinds(self, agent: str | None = None) -> list[str]:
        return [e.kind for e in self.events if agent is None or e.agent == agent]
