"""The sandbox provider: told to misbehave by its settings (latency, 503s, 429s, time-outs) with
the same answers delivery gets from real providers, and its page shows what it "sent"."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from tests.console.conftest import signed_in  # noqa: F401
from trato.delivery.channels.base import OutgoingMessage
from trato.delivery.channels.sandbox import Sandbox, SandboxSettings


def _message(n: int) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"msg_S{n}", channel="sms", recipient="+34612345678",
                           parts={"text": f"Hola {n}"}, customer_id="cus_ANA")


def test_the_shares_of_misbehaviour_follow_the_settings_and_repeat_for_a_seed() -> None:
    settings = SandboxSettings(error_rate=0.2, throttle_rate=0.1, timeout_rate=0.05, retry_after=7, seed=42)
    first = Sandbox(settings)
    answers = [first.send(_message(n)) for n in range(2000)]
    kinds = Counter("503" if "503" in (r.error or "") else "429" if "429" in (r.error or "") else r.outcome
                    for r in answers)
    assert 330 <= kinds["503"] <= 470 and 140 <= kinds["429"] <= 260 and 60 <= kinds["ambiguous"] <= 150
    assert kinds["accepted"] == 2000 - kinds["503"] - kinds["429"] - kinds["ambiguous"]
    throttled = next(r for r in answers if "429" in (r.error or ""))
    assert throttled.retry_after == 7 and not throttled.permanent
    second = Sandbox(settings)
    again = [second.send(_message(n)).outcome for n in range(2000)]
    assert len(first.sent) == min(kinds["accepted"], settings.keep)
    assert again == [r.outcome for r in answers]  # the same seed, the same story


def test_settings_from_one_url_and_their_limits() -> None:
    settings = Sandbox.settings_from_url("sandbox://?latency_ms=5&error_rate=0.5&seed=1")
    assert isinstance(settings, SandboxSettings)
    assert (settings.latency_ms, settings.error_rate, settings.seed) == (5, 0.5, 1)
    with pytest.raises(ValueError, match="options"):
        Sandbox.settings_from_url("sandbox://?eror_rate=0.5")
    with pytest.raises(ValidationError, match="must not exceed 1"):
        SandboxSettings(error_rate=0.6, timeout_rate=0.6)


@pytest.mark.usefixtures("immediate_queue")
def test_the_page_shows_what_was_sent_escaped_and_in_both_languages(
        api: Any, signed_in: Any, sandbox: Any, send_body: Any) -> None:  # noqa: F811
    message_id = api.post("/api/v1/messages", json=send_body(
        channels=["sms"], data={"invoice": "<b>F-9</b>", "amount": 3})).json()["id"]
    assert sandbox.find(message_id)
    page = signed_in.get("/sandbox?lang=es")
    assert page.status_code == 200 and "<h1>Sandbox (pruebas)</h1>" in page.text
    assert f'href="/messages/{message_id}"' in page.text
    assert "<b>F-9</b>" not in page.text and "&lt;b&gt;F-9&lt;/b&gt;" in page.text
    assert message_id not in signed_in.get("/sandbox?channel=email&lang=en").text
    assert "The sandbox has accepted nothing yet" in signed_in.get("/sandbox?channel=voice&lang=en").text
