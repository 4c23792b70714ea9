"""Interruptions and decisions: stored once however often they are reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.planning.model import Pool
from spot_operator.ports import DecisionRecord, InterruptionRecord
from spot_operator.storage.history import decisions, interruptions, record_decision, record_interruption

pytestmark = pytest.mark.postgres

T0 = datetime(2022, 6, 1, tzinfo=UTC)
A = Pool("m5.large", "us-east-1a")


def test_a_notice_from_the_agent_and_from_sqs_is_one_event(sessions: sessionmaker[Session]) -> None:
    event = InterruptionRecord("i-0123456789abcdef0", "interruption", T0, A, "agent")
    with sessions.begin() as s:
        assert record_interruption(s, event, T0)
        assert not record_interruption(s, InterruptionRecord(event.instance_id, event.kind, T0, A, "sqs"), T0)
        assert record_interruption(s, InterruptionRecord(event.instance_id, "rebalance", T0, A), T0)
        assert record_interruption(s, InterruptionRecord("i-1", "stopped", T0, None), T0)
        found = interruptions(s, [A])
        everything = interruptions(s)
    assert [(e.kind, e.source, e.pool) for e in found] == [
        ("interruption", "agent", A),
        ("rebalance", "agent", A),
    ]
    assert len(everything) == 3


def test_decisions_keep_their_inputs_and_are_stored_once(sessions: sessionmaker[Session]) -> None:
    decision = DecisionRecord(
        agent="team/build",
        at=T0,
        model_name="xgboost",
        model_version="20220601-abc",
        inputs={"pools": [str(A)], "now": T0},
        scores={str(A): {"risk": 0.1, "price": 0.03}},
        choice=str(A),
        reason="saves 40 %",
    )
    with sessions.begin() as s:
        assert record_decision(s, decision)
        assert not record_decision(s, decision)  # a retried write
        record_decision(
            s, DecisionRecord("team/build", T0 + timedelta(minutes=5), "rules", "1", {}, {}, None, "stay")
        )
        stored = decisions(s, "team/build")
    assert [d.choice for d in stored] == [None, str(A)]  # newest first
    assert stored[1].inputs == {"pools": [str(A)], "now": T0.isoformat()}
    assert stored[1].scores == {str(A): {"risk": 0.1, "price": 0.03}}


def test_an_agent_is_namespace_slash_name(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="namespace"), sessions.begin() as s:
        decisions(s, "build")
