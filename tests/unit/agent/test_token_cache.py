from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from spot_agent.imds import ImdsClient, TokenCache


def test_empty_cache_has_no_token() -> None:
    assert TokenCache().valid(0.0) is None


def test_token_is_renewed_before_expiry() -> None:
    cache = TokenCache()
    cache.store("t", 21600, now=1000.0)
    assert cache.valid(1000.0) == "t"
    assert cache.valid(1000.0 + 21600 - 61) == "t"
    assert cache.valid(1000.0 + 21600 - 60) is None  # a minute of margin for a six-hour token
    short = TokenCache()
    short.store("s", 10, now=0.0)
    assert short.valid(8.9) == "s"
    assert short.valid(9.0) is None  # a tenth of a short TTL


def test_invalidate() -> None:
    cache = TokenCache()
    cache.store("t", 100, now=0.0)
    cache.invalidate()
    assert cache.valid(1.0) is None


@given(ttl=st.integers(1, 21600), stored_at=st.floats(0, 1e6), elapsed=st.floats(0, 30000))
def test_never_hands_out_a_token_within_its_margin(ttl: int, stored_at: float, elapsed: float) -> None:
    cache = TokenCache()
    cache.store("t", ttl, now=stored_at)
    now = stored_at + elapsed
    token = cache.valid(now)
    remaining = stored_at + ttl - now
    if token is not None:
        assert remaining > TokenCache.margin(ttl) - 1e-6
    else:
        assert remaining <= TokenCache.margin(ttl) + 1e-6


def test_client_refuses_bad_settings() -> None:
    import pytest

    with pytest.raises(ValueError, match="http:// URL"):
        ImdsClient("https://169.254.169.254")
    with pytest.raises(ValueError, match="TTL"):
        ImdsClient(token_ttl_seconds=21601)
