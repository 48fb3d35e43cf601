"""Twilio and Infobip adapters against their loopback fakes: how every answer (and every missing
answer) is classified, the error codes that say a number can never receive, one-line settings,
the connection test, and voice scripts turned into TwiML."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.delivery.conftest import infobip_settings, twilio_settings
from tests.delivery.smtp_peer import free_port
from trato.delivery.channels.base import ChannelAdapter, OutgoingMessage


def _sms(recipient: str = "+34612345678", text: str = "Hola Ana") -> OutgoingMessage:
    return OutgoingMessage(message_id="msg_FAULT1", channel="sms", recipient=recipient, parts={"text": text},
                           customer_id="cus_ANA")


@pytest.fixture(params=["twilio", "infobip"])
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Callable[..., ChannelAdapter]]]:
    """(the fake, a factory of the adapter pointed at it with settings overridden)."""
    from trato.delivery.channels.infobip import InfobipSms
    from trato.delivery.channels.twilio import TwilioSms

    made: list[ChannelAdapter] = []
    if request.param == "twilio":
        fake = request.getfixturevalue("twilio_fake")

        def make(**extra: Any) -> ChannelAdapter:
            made.append(TwilioSms(twilio_settings(fake, **extra)))
            return made[-1]
    else:
        fake = request.getfixturevalue("infobip_fake")

        def make(**extra: Any) -> ChannelAdapter:
            made.append(InfobipSms(infobip_settings(fake, **extra)))
            return made[-1]
    yield fake, make
    for adapter in made:
        adapter.close()


def test_a_server_error_is_a_refusal_to_retry(provider: Any) -> None:
    fake, make = provider
    fake.fail_next(status=503)
    result = make().send(_sms())
    assert (result.outcome, result.permanent) == ("refused", False)
    assert "503" in (result.error or "")


def test_too_many_requests_is_retried_after_the_delay_asked(provider: Any) -> None:
    fake, make = provider
    fake.fail_next(status=429, retry_after="7")
    result = make().send(_sms())
    assert (result.outcome, result.permanent, result.retry_after) == ("refused", False, 7.0)


def test_no_answer_after_sending_is_ambiguous(provider: Any) -> None:
    fake, make = provider
    fake.fail_next("hang")
    result = make(timeout=0.5).send(_sms())
    assert result.outcome == "ambiguous" and "ReadTimeout" in (result.error or "")
    assert len(fake.requests) == 1  # it did reach the provider


def test_a_dropped_connection_after_sending_is_ambiguous(provider: Any) -> None:
    fake, make = provider
    fake.fail_next("drop")
    result = make().send(_sms())
    assert result.outcome == "ambiguous"


def test_connection_refused_is_a_refusal_nothing_was_sent(provider: Any) -> None:
    _, make = provider
    result = make(base_url=f"http://127.0.0.1:{free_port()}").send(_sms())
    assert (result.outcome, result.permanent) == ("refused", False)
    assert "unreachable" in (result.error or "")


def test_wrong_credentials_are_refused_for_good(provider: Any) -> None:
    fake, make = provider
    secret = {"auth_token": "wrong-token"} if hasattr(fake, "auth_token") else {"api_key": "wrong-key"}
    result = make(**secret).send(_sms())
    assert (result.outcome, result.permanent) == ("refused", True)
    assert "401" in (result.error or "")
    check = make(**secret).check()
    assert not check.ok and "refused" in check.detail


def test_the_connection_test_reaches_the_account_without_sending(provider: Any) -> None:
    fake, make = provider
    check = make().check()
    assert check.ok, check.detail
    assert [r.method for r in fake.requests] == ["GET"]
    down = make(base_url=f"http://127.0.0.1:{free_port()}").check()
    assert not down.ok and "cannot be reached" in down.detail


@pytest.mark.parametrize(("code", "permanent"), [(21211, True), (21614, True), (21610, True), (21606, False),
                                                 (20429, False)])
def test_twilio_error_codes_about_the_recipient_are_final(twilio_fake: Any, code: int, permanent: bool) -> None:
    from trato.delivery.channels.twilio import TwilioSms

    twilio_fake.reject["+34600000001"] = (429 if code == 20429 else 400, code)
    adapter = TwilioSms(twilio_settings(twilio_fake))
    result = adapter.send(_sms("+34600000001"))
    adapter.close()
    assert result.outcome == "refused" and str(code) in (result.error or "")
    # 21606 (the From number cannot send) is our configuration's fault: final too, but not the recipient's.
    assert result.permanent is (permanent or code == 21606)


def test_twilio_refuses_a_malformed_number_before_sending(twilio_fake: Any) -> None:
    from trato.delivery.channels.twilio import TwilioSms

    adapter = TwilioSms(twilio_settings(twilio_fake))
    result = adapter.send(_sms("612345678"))
    adapter.close()
    assert (result.outcome, result.permanent) == ("refused", True)
    assert "21211" in (result.error or "")


def test_a_suspended_twilio_account_fails_the_connection_test(twilio_fake: Any) -> None:
    from trato.delivery.channels.twilio import TwilioSms

    twilio_fake.account_status = "suspended"
    adapter = TwilioSms(twilio_settings(twilio_fake))
    check = adapter.check()
    adapter.close()
    assert not check.ok and "suspended" in check.detail


def test_twilio_messaging_services_send_without_a_from_number(twilio_fake: Any) -> None:
    from urllib.parse import parse_qs

    from trato.delivery.channels.twilio import TwilioSms

    service = "MG" + "ab" * 16
    adapter = TwilioSms(twilio_settings(twilio_fake, from_number=None, messaging_service_sid=service))
    assert adapter.send(_sms()).outcome == "accepted"
    adapter.close()
    form = parse_qs(twilio_fake.requests[0].body.decode())
    assert form["MessagingServiceSid"] == [service] and "From" not in form


@pytest.mark.parametrize(("status", "permanent"), [("REJECTED_DESTINATION", True),
                                                   ("REJECTED_NOT_ENOUGH_CREDITS", False)])
def test_infobip_rejections_are_classified(infobip_fake: Any, status: str, permanent: bool) -> None:
    from trato.delivery.channels.infobip import InfobipSms

    infobip_fake.reject["34600000001"] = status
    adapter = InfobipSms(infobip_settings(infobip_fake))
    result = adapter.send(_sms("+34600000001"))
    adapter.close()
    assert (result.outcome, result.permanent) == ("refused", permanent)
    assert status in (result.error or "")


def test_infobip_gets_the_whole_text_our_id_and_the_notify_url(infobip_fake: Any) -> None:
    import orjson

    from tests.delivery.conftest import INFOBIP_SECRET
    from trato.delivery.channels.infobip import InfobipSms

    adapter = InfobipSms(infobip_settings(infobip_fake))
    text = "Ñandú " * 60
    result = adapter.send(_sms(text=text))
    adapter.close()
    assert result.outcome == "accepted" and result.provider_message_id in infobip_fake.sent
    (message,) = orjson.loads(infobip_fake.requests[0].body)["messages"]
    assert message == {
        "destinations": [{"to": "34612345678"}], "text": text, "callbackData": "msg_FAULT1", "from": "BancoEj",
        "notifyUrl": f"http://127.0.0.1:8000/hooks/infobip/infobip/{INFOBIP_SECRET}/reports",
        "notifyContentType": "application/json"}
    quiet = InfobipSms(infobip_settings(infobip_fake, webhook_secret=None))  # no secret: no reports asked for
    quiet.send(_sms())
    quiet.close()
    assert "notifyUrl" not in orjson.loads(infobip_fake.requests[-1].body)["messages"][0]


# -- one-line settings ------------------------------------------------------------------------------


def test_twilio_settings_from_one_url() -> None:
    from trato.core.errors import ConfigurationError
    from trato.delivery.channels.twilio import TwilioSms, TwilioVoice

    sid = "AC" + "0a" * 16
    settings = TwilioSms.settings_from_url(f"twilio://{sid}:tok%2Fen@?from=%2B34911000000&base_url=http://127.0.0.1:9")
    assert settings.account_sid == sid and settings.auth_token.get_secret_value() == "tok/en"
    assert settings.from_number == "+34911000000" and settings.base_url == "http://127.0.0.1:9"
    assert "tok/en" not in repr(settings)
    service = TwilioVoice.settings_from_url(
        f"twilio://{sid}:t@%2B34911000000?messaging_service=MG{'b1' * 16}&voice=Polly.Conchita")
    assert service.from_number == "+34911000000" and service.messaging_service_sid == "MG" + "b1" * 16
    assert service.voice == "Polly.Conchita"
    for wrong in (f"twilio://{sid}:tok@", "twilio://AC123:tok@?from=%2B34911000000", f"sms://{sid}:t@?from=x"):
        with pytest.raises(ConfigurationError) as caught:
            TwilioSms.settings_from_url(wrong)
        assert caught.value.setting == "twilio" and "tok" not in caught.value.message


def test_infobip_settings_from_one_url() -> None:
    from trato.core.errors import ConfigurationError
    from trato.delivery.channels.infobip import InfobipSms

    settings = InfobipSms.settings_from_url("infobip://KEY123@abc12.api.infobip.com?from=BancoEj&webhook_secret="
                                            "0123456789abcdef")
    assert settings.base_url == "https://abc12.api.infobip.com" and settings.sender == "BancoEj"
    assert settings.api_key.get_secret_value() == "KEY123"
    assert settings.webhook_secret.get_secret_value() == "0123456789abcdef"
    local = InfobipSms.settings_from_url("infobip://K@x?base_url=http://127.0.0.1:9")
    assert local.base_url == "http://127.0.0.1:9" and local.webhook_secret is None
    for wrong in ("infobip://abc12.api.infobip.com", "infobip://KEY@", "infobip://KEY@h?webhook_secret=short"):
        with pytest.raises(ConfigurationError):
            InfobipSms.settings_from_url(wrong)
    with pytest.raises(ConfigurationError):
        InfobipSms()


# -- voice scripts as TwiML -------------------------------------------------------------------------


def test_ssml_becomes_twiml_with_what_twilio_reads() -> None:
    from trato.delivery.channels import twiml

    script = ('<speak xmlns="http://www.w3.org/2001/10/synthesis" xmlns:amazon="http://www.amazon.com/ssml" '
              'xml:lang="es-ES"><audio src="https://cdn.example/logo.mp3">logo</audio>'
              '<p>Su saldo es <say-as interpret-as="currency" bogus="1">48,20 €</say-as>.</p>'
              '<voice name="x"><amazon:effect name="whispered">entre nosotros</amazon:effect></voice>'
              '<lang xml:lang="en-US">thank you</lang><mark name="m"/><audio src="http://insecure/x.mp3">pitido</audio>'
              '<sub alias="Banco">B&amp;E</sub></speak>')
    root = twiml.parse(script)
    assert twiml.language_of(root) == "es-ES"
    assert twiml.twiml(script, language="es-ES", voice="Polly.Lucia-Neural") == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Play>https://cdn.example/logo.mp3</Play>'
        '<Say language="es-ES" voice="Polly.Lucia-Neural"><p>Su saldo es '
        '<say-as interpret-as="currency">48,20 €</say-as>.</p>entre nosotros<lang xml:lang="en-US">thank you</lang>'
        'pitido<sub alias="Banco">B&amp;E</sub></Say></Response>')


@pytest.mark.parametrize("script", [
    '<!DOCTYPE speak [<!ENTITY a "aaaa">]><speak>&a;</speak>', "<speak>sin cerrar", "<p>no speak</p>",
    '<speak><mark name="only"/></speak>'])
def test_scripts_that_cannot_be_played_are_refused(script: str, twilio_fake: Any) -> None:
    from trato.delivery.channels import twiml
    from trato.delivery.channels.twilio import TwilioVoice

    with pytest.raises(twiml.InvalidScript):
        twiml.twiml(script, language="es-ES", voice=None)
    adapter = TwilioVoice(twilio_settings(twilio_fake))
    result = adapter.send(OutgoingMessage(message_id="msg_V", channel="voice", recipient="+34612345678",
                                          parts={"ssml": script}, customer_id="cus_ANA"))
    adapter.close()
    assert (result.outcome, result.permanent) == ("refused", True)
    assert twilio_fake.requests == []


def test_the_call_speaks_the_customers_language_with_its_voice(twilio_fake: Any) -> None:
    from trato.delivery.channels.twilio import TwilioVoice

    adapter = TwilioVoice(twilio_settings(twilio_fake))
    english = OutgoingMessage(message_id="msg_V", channel="voice", recipient="+34612345678",
                              parts={"ssml": "<speak>Hi Ana</speak>"}, customer_id="cus_ANA", language="en")
    assert '<Say language="en-US" voice="Polly.Joanna-Neural">Hi Ana</Say>' in adapter.build(english)
    long = OutgoingMessage(message_id="msg_V", channel="voice", recipient="+34612345678",
                           parts={"ssml": "<speak>" + "Hola. " * 700 + "</speak>"}, customer_id="cus_ANA")
    result = adapter.send(long)
    adapter.close()
    assert (result.outcome, result.permanent) == ("refused", True) and "4000" in (result.error or "")


# -- properties ---------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(params=st.lists(st.tuples(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12), _text),
                       max_size=8),
       token=_text.filter(bool), query=_text)
def test_any_callback_signed_as_twilio_signs_it_verifies_and_any_change_does_not(
        params: list[tuple[str, str]], token: str, query: str) -> None:
    from tests.fakes.twilio import sign
    from trato.delivery.callbacks.twilio import verify

    url = "https://trato.example/hooks/twilio/twilio/status" + (f"?q={query}" if query else "")
    header = sign(token, url, params)
    assert verify(token, url, params, header)
    assert verify(token, url, list(reversed(params)), header)  # the order they came in does not matter
    assert not verify(token, url, [*params, ("Extra", "1")], header)
    if params:
        name, value = params[0]
        assert not verify(token, url, [(name, value + "x"), *params[1:]], header)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(_text, min_size=1, max_size=5))
def test_whatever_the_customer_values_the_twiml_is_well_formed_and_says_them(words: list[str]) -> None:
    import xml.etree.ElementTree as ET
    from xml.sax.saxutils import escape

    from trato.delivery.channels import twiml

    body = "".join(f"<s>{escape(w)}</s>" for w in words)
    try:
        document = twiml.twiml(f"<speak>Hola {body}</speak>", language="es-ES", voice="Polly.Lucia-Neural")
    except twiml.InvalidScript:  # only when there is nothing to say
        pytest.fail("a script with words must play")
    root = ET.fromstring(document)
    assert root.tag == "Response" and [c.tag for c in root] == ["Say"]
    spoken = "".join(root[0].itertext())
    for word in words:
        assert word.strip() in spoken
