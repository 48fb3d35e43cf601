"""Versions and four-eyes approval: every save a version, the author never approves, only approved
versions are sent, and every decision is audited with the content hash."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from tests.content.factory import CONTENT, make_communication
from trato.content import service
from trato.content import errors
from trato.core.audit import AuditEntry

AUTHOR, REVIEWER = "token:author", "token:reviewer"


def test_every_save_is_a_new_immutable_version_with_its_hash(session):
    communication = make_communication(session)
    first = service.get_version(session, communication.latest_version_id)
    changed = copy.deepcopy(CONTENT)
    changed["sms"]["es"]["text"] = "Hola {{ customer.first_name }}, ya tienes tu factura {{ data.invoice }}."
    second = service.save_version(session, communication_id=communication.id, content=changed, actor=AUTHOR)
    assert (first.number, second.number) == (1, 2)
    assert first.content_sha256 != second.content_sha256 and len(second.content_sha256) == 64
    assert first.content["sms"]["es"]["text"] != second.content["sms"]["es"]["text"]
    assert [v.number for v in service.list_versions(session, communication_id=communication.key)] == [2, 1]
    diffs = service.diff_versions(session, from_version_id=first.id, to_version_id=second.id)
    assert [d.field for d in diffs] == ["sms.es.text"]
    assert "-Hola {{ customer.first_name }}: tu factura" in diffs[0].diff
    assert "+Hola {{ customer.first_name }}, ya tienes" in diffs[0].diff


def test_invalid_content_is_refused_field_by_field(session):
    bad = {"sms": {"es": {"text": ""}}, "fax": {"es": {}}, "email": {"de": {"subject": "x", "body_html": "y"}}}
    with pytest.raises(errors.InvalidContent) as caught:
        make_communication(session, content=bad)
    fields = {p["field"] for p in caught.value.details}
    assert {"sms.es.text", "fax", "email.de"} <= fields


def test_author_cannot_approve_and_reviewer_must_acknowledge_warnings(session):
    communication = make_communication(session)
    version = service.get_version(session, communication.latest_version_id)
    with pytest.raises(errors.WrongVersionState):
        service.approve(session, version_id=version.id, actor=REVIEWER)
    service.submit(session, version_id=version.id, actor=AUTHOR)
    assert version.status == "in_review"
    with pytest.raises(errors.SelfApproval):
        service.approve(session, version_id=version.id, actor=AUTHOR, acknowledge=["x"])
    warnings = sorted({f["code"] for f in version.findings if f["severity"] == "warning"})
    if warnings:
        with pytest.raises(errors.WarningsNotAcknowledged):
            service.approve(session, version_id=version.id, actor=REVIEWER)
    service.approve(session, version_id=version.id, actor=REVIEWER, acknowledge=warnings, comment="OK")
    assert version.status == "approved" and version.decided_by == REVIEWER
    assert communication.approved_version_id == version.id and communication.status == "active"
    session.flush()
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "communication.version.approve")).all()
    assert len(rows) == 1 and rows[0].actor == REVIEWER
    assert rows[0].details["content_sha256"] == version.content_sha256
    with pytest.raises(errors.WrongVersionState):
        service.submit(session, version_id=version.id, actor=AUTHOR)


def test_changes_requested_need_a_reason_and_a_new_version_follows(session):
    communication = make_communication(session)
    version = service.get_version(session, communication.latest_version_id)
    service.submit(session, version_id=version.id, actor=AUTHOR)
    with pytest.raises(errors.WrongVersionState):
        service.request_changes(session, version_id=version.id, actor=REVIEWER, comment=" ")
    service.request_changes(session, version_id=version.id, actor=REVIEWER, comment="Falta el importe")
    assert version.status == "changes_requested"
    comments = service.comments_of(session, version_ids=[version.id])[version.id]
    assert [(c.action, c.body) for c in comments][-1] == ("changes_requested", "Falta el importe")


def test_preflight_errors_block_submission(session):
    content = copy.deepcopy(CONTENT)
    content["sms"]["es"]["text"] = "Hola {{ custmer.first_name }}"
    del content["email"]["en"]
    communication = make_communication(session, content=content)
    with pytest.raises(errors.PreflightFailed) as caught:
        service.submit(session, version_id=communication.latest_version_id, actor=AUTHOR)
    codes = {f["code"] for f in caught.value.details}
    assert {"unknown_variable", "missing_language"} <= codes


def test_only_an_approved_version_is_rendered_for_sending(session):
    from trato.customers import service as customers

    customer = customers.create_customer(
        session, traits={"first_name": "Ana", "locale": "en-US"}, identities=[("email", "ana@example.com")],
        actor="test")
    communication = make_communication(session)
    with pytest.raises(errors.NotApproved):
        service.render_for_send(session, communication_id=communication.id, customer_id=customer.id, channel="sms")
    version = service.get_version(session, communication.latest_version_id)
    service.submit(session, version_id=version.id, actor=AUTHOR)
    service.approve(session, version_id=version.id, actor=REVIEWER,
                    acknowledge=[f["code"] for f in version.findings])
    # A newer draft is never what is sent.
    changed = copy.deepcopy(CONTENT)
    changed["sms"]["en"]["text"] = "DRAFT {{ customer.first_name }}"
    service.save_version(session, communication_id=communication.id, content=changed, actor=AUTHOR)
    sent = service.render_for_send(session, communication_id=communication.id, customer_id=customer.id,
                                   channel="sms", data={"invoice": "F-9"})
    assert sent.version_id == version.id and sent.language == "en"
    assert sent.parts == {"text": "Hi Ana: invoice F-9 is ready."}
    preview = service.render(session, communication=communication, customer_id=customer.id, channel="sms",
                             data={"invoice": "F-9"})
    assert preview.parts["text"] == "DRAFT Ana"
    again = service.reproduce(session, version_id=sent.version_id, channel="sms", language=sent.language,
                              context=sent.context)
    assert again == sent.parts


def test_language_falls_back_to_the_default_when_the_customer_speaks_another(session):
    communication = make_communication(session)
    rendered = service.render(session, communication=communication, channel="sms", sample={"locale": "fr-FR"})
    assert rendered.language == "es" and rendered.parts["text"].startswith("Hola Lucía")


def test_a_retired_communication_is_never_sent(session):
    from trato.customers import service as customers

    customer = customers.create_customer(session, traits={"first_name": "Ana"},
                                         identities=[("email", "ana@example.com")], actor="test")
    communication = make_communication(session)
    version = service.submit(session, version_id=communication.latest_version_id, actor=AUTHOR)
    service.approve(session, version_id=version.id, actor=REVIEWER, acknowledge=[f["code"] for f in version.findings])
    assert service.render_for_send(session, communication_id=communication.key, customer_id=customer.id,
                                   channel="sms").version_id == version.id
    service.update_communication(session, communication_id=communication.id, actor=REVIEWER, status="retired")
    with pytest.raises(errors.NotApproved) as caught:
        service.render_for_send(session, communication_id=communication.id, customer_id=customer.id, channel="sms")
    assert caught.value.code == "communication_retired"
    with pytest.raises(errors.ChannelNotCovered):
        service.render(session, communication=communication, channel="voice")
