from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spot_operator.agent_api.tokens import TokenStore, generate_token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_generated_tokens_are_long_and_distinct() -> None:
    tokens = {generate_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(t) >= 43 for t in tokens)


def test_a_token_speaks_for_its_agent_only() -> None:
    store = TokenStore()
    a = store.issue("prod/a")
    b = store.issue("prod/b")
    assert store.authenticate(a) == "prod/a"
    assert store.authenticate(b) == "prod/b"
    assert store.authenticate(("y" if a[0] == "x" else "x") + a[1:]) is None  # one character off
    assert store.authenticate("") is None
    assert store.authenticate("y" * 10_000) is None
    assert store.agents() == ["prod/a", "prod/b"]


def test_rotation_keeps_the_previous_token_for_the_grace_period() -> None:
    clock = Clock()
    store = TokenStore(grace_seconds=60, clock=clock)
    old = store.issue("prod/a")
    new = store.rotate("prod/a")
    assert new != old
    clock.now += 59
    assert store.authenticate(old) == "prod/a"
    assert store.authenticate(new) == "prod/a"
    clock.now += 1
    assert store.authenticate(old) is None
    assert store.authenticate(new) == "prod/a"
    clock.now += 10_000
    assert store.authenticate(new) == "prod/a"  # the current token does not expire


def test_a_second_rotation_drops_the_oldest_at_once() -> None:
    clock = Clock()
    store = TokenStore(grace_seconds=60, clock=clock)
    first = store.issue("prod/a")
    second = store.rotate("prod/a")
    third = store.rotate("prod/a")
    assert store.authenticate(first) is None
    assert store.authenticate(second) == "prod/a"
    assert store.authenticate(third) == "prod/a"


def test_setting_the_same_token_again_changes_nothing() -> None:
    clock = Clock()
    store = TokenStore(grace_seconds=60, clock=clock)
    store.set("prod/a", "token-from-secret")
    store.set("prod/a", "token-from-secret")  # the Secret re-read on every resume
    clock.now += 3600
    assert store.authenticate("token-from-secret") == "prod/a"


def test_revoke() -> None:
    store = TokenStore()
    old = store.issue("prod/a")
    new = store.rotate("prod/a")
    store.revoke("prod/a")
    assert store.authenticate(old) is None
    assert store.authenticate(new) is None
    assert "prod/a" not in store


def test_a_token_cannot_belong_to_two_agents() -> None:
    store = TokenStore()
    store.set("prod/a", "shared-token")
    with pytest.raises(ValueError, match="another agent"):
        store.set("prod/b", "shared-token")
    with pytest.raises(ValueError, match=r"1\.\.256"):
        store.set("prod/b", "")


@given(st.text(min_size=1, max_size=300))
def test_only_issued_tokens_authenticate(candidate: str) -> None:
    store = TokenStore()
    token = store.issue("prod/a")
    assert (store.authenticate(candidate) == "prod/a") == (candidate == token)
