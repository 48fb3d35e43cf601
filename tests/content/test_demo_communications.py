"""The demo's communications load through the content service, pass preflight, and load once."""

from __future__ import annotations

from collections import Counter

from trato.content import preview, service
from trato.demo.communications import DEMOS, load_communications


def test_demo_communications_cover_purposes_channels_and_review_states(session):
    assert load_communications(session) == len(DEMOS) >= 15
    assert load_communications(session) == 0  # a second load adds nothing
    found = service.list_communications(session)
    assert {c.purpose for c in found} == {"service", "transactional", "advice", "marketing", "payment", "research"}
    assert len({c.department for c in found}) >= 6
    versions = Counter(service.get_version(session, c.latest_version_id).status for c in found)
    assert versions["approved"] >= 8 and versions["in_review"] >= 3
    assert versions["changes_requested"] == 1 and versions["draft"] == 1
    for communication in found:
        version = service.get_version(session, communication.latest_version_id)
        assert {lang for variants in version.content.values() for lang in variants} == {"es", "en"}
        assert len(version.content) >= 1
    assert {u["key"] for u in service.block_used_by(session, block_key="legal")} >= {"welcome", "black-friday"}


def test_every_demo_channel_renders_in_both_languages(session):
    load_communications(session)
    for communication in service.list_communications(session):
        for lang in ("es", "en"):
            shown = preview.preview(session, communication=communication, language=lang)
            failed = {c: v["error"] for c, v in shown["channels"].items() if "error" in v}
            assert not failed, (communication.key, lang, failed)
            assert all(v["language"] == lang for v in shown["channels"].values())
