"""Four eyes as a property: whatever people do in whatever order, no version is ever approved by
its author, what is sent is always the approved version, and a version's content never changes."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.content.factory import CONTENT, make_communication
from tests.database import empty_database
from trato.content import errors, service

PEOPLE = ["token:ana", "token:bruno", "token:carla"]
ACTIONS = st.lists(st.tuples(st.sampled_from(["save", "submit", "approve", "request_changes", "send"]),
                             st.sampled_from(PEOPLE), st.integers(min_value=0, max_value=3)), max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_no_sequence_of_actions_breaks_four_eyes(database_url, actions):
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    try:
        with unit_of_work() as session:
            customer = customers.create_customer(session, traits={"first_name": "Ana"},
                                                 identities=[("email", "ana@example.com")], actor="test")
            communication = make_communication(session, actor=PEOPLE[0])
            hashes = {communication.latest_version_id: service.get_version(
                session, communication.latest_version_id).content_sha256}
            for step, (action, who, pick) in enumerate(actions):
                versions = service.list_versions(session, communication_id=communication.id)
                version = versions[pick % len(versions)]
                try:
                    if action == "save":
                        content = copy.deepcopy(CONTENT)
                        content["sms"]["es"]["text"] = f"Hola {{{{ customer.first_name }}}} #{step}"
                        saved = service.save_version(session, communication_id=communication.id, content=content,
                                                     actor=who)
                        hashes[saved.id] = saved.content_sha256
                    elif action == "submit":
                        service.submit(session, version_id=version.id, actor=who)
                    elif action == "approve":
                        service.approve(session, version_id=version.id, actor=who,
                                        acknowledge=[f["code"] for f in version.findings])
                    elif action == "request_changes":
                        service.request_changes(session, version_id=version.id, actor=who, comment="no")
                    else:
                        sent = service.render_for_send(session, communication_id=communication.id,
                                                       customer_id=customer.id, channel="sms")
                        assert sent.version_id == communication.approved_version_id
                        assert service.get_version(session, sent.version_id).status == "approved"
                except (errors.WrongVersionState, errors.SelfApproval, errors.NotApproved):
                    pass
            for version in service.list_versions(session, communication_id=communication.id):
                assert version.content_sha256 == hashes[version.id] == service.content_sha256(
                    version.content, version.blocks)
                if version.status == "approved":
                    assert version.decided_by != version.author
                if version.status in ("approved", "changes_requested", "in_review"):
                    assert version.submitted_by is not None
            if communication.approved_version_id:
                assert service.get_version(session, communication.approved_version_id).status == "approved"
    finally:
        empty_database()
