"""Compact signed tokens: what one purpose signs, no other purpose or changed token reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from trato.core import signing

payloads = st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=30), st.integers(-2**63, 2**63 - 1), st.none()), max_size=5)


@settings(max_examples=200, deadline=None)
@given(payload=payloads, timed=st.booleans())
def test_a_token_gives_back_what_was_signed(payload: dict, timed: bool) -> None:
    s = signing.Signer("secret", "purpose")
    assert s.loads(s.dumps(payload, timed=timed)) == payload


@settings(max_examples=300, deadline=None)
@given(payload=payloads, data=st.data())
def test_any_changed_character_is_refused(payload: dict, data: st.DataObject) -> None:
    token = signing.Signer("secret", "purpose").dumps(payload, timed=True)
    at = data.draw(st.integers(0, len(token) - 1))
    other = data.draw(st.sampled_from("ABCDEFabcdef0123456789-_.é").filter(lambda c: c != token[at]))
    changed = token[:at] + other + token[at + 1:]
    with pytest.raises(signing.BadToken):
        signing.Signer("secret", "purpose").loads(changed)


def test_another_purpose_or_secret_cannot_read_it() -> None:
    token = signing.Signer("secret", "unsubscribe").dumps({"c": "cus_1"})
    for reader in (signing.Signer("secret", "preferences"), signing.Signer("other", "unsubscribe")):
        with pytest.raises(signing.BadToken):
            reader.loads(token)


def test_age_is_checked_only_on_timed_tokens() -> None:
    s = signing.Signer("secret", "p")
    token = s.dumps({"c": "x"}, timed=True, now=1_000_000)
    assert s.loads(token, max_age=60, now=1_000_059) == {"c": "x"}
    with pytest.raises(signing.ExpiredToken):
        s.loads(token, max_age=60, now=1_000_061)
    with pytest.raises(signing.BadToken):
        s.loads(s.dumps({"c": "x"}), max_age=60)


def test_links_made_by_the_earlier_format_are_still_read() -> None:
    old = URLSafeTimedSerializer("secret", salt="trato.policy.unsubscribe")
    token = old.dumps({"c": "cus_1"})
    assert signing.read("secret", "trato.policy.unsubscribe", token,
                        legacy=lambda t: old.loads(t, max_age=60)) == {"c": "cus_1"}
    with pytest.raises(signing.BadToken):
        signing.read("secret", "trato.policy.unsubscribe", token)
