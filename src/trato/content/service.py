"""The content domain's public face: communications, versions, four-eyes approval, content blocks,
rendering for preview and for sending, and reproducing what was sent.

Functions take the session first and keyword-only arguments after it; none commits. Other
domains call only these: delivery calls :func:`render_for_send`, the archive stores the
returned version id and context and calls :func:`reproduce` to show the message again.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trato.content import blocks as block_service
from trato.content import preflight as preflight_checks
from trato.content import rendering
from trato.content.errors import (
    CommunicationNotFound, KeyTaken, NotApproved, PreflightFailed, SelfApproval, VersionNotFound,
    TemplateError, WarningsNotAcknowledged, WrongVersionState,
)
from trato.content.findings import Finding
from trato.content.models import Communication, ContentBlockUse, TemplateVersion, VersionComment
from trato.content.rendering import Parts
from trato.content.schemas import template_fields, validate_content
from trato.content.templating import block_keys
from trato.core import audit
from trato.core.clock import utcnow
from trato.core.ids import new_id
from trato.core.settings import get_settings

__all__ = [
    "Rendered", "create_communication", "update_communication", "save_version", "get_communication",
    "list_communications", "inventory", "delivery_stats", "list_versions", "get_version", "comments_of", "submit",
    "approve", "request_changes", "add_comment", "diff_versions", "preflight", "render", "render_for_send",
    "render_many", "approved_version",
    "reproduce", "create_block", "update_block", "get_block", "list_blocks", "block_used_by",
]

create_block = block_service.create_block
update_block = block_service.update_block
get_block = block_service.get_block
list_blocks = block_service.list_blocks
block_used_by = block_service.used_by


def content_sha256(content: Mapping[str, Any], blocks: Mapping[str, str]) -> str:
    """SHA-256 of a version's canonical JSON (sorted keys) with its pinned blocks."""
    canonical = orjson.dumps({"content": content, "blocks": blocks}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


# -- communications -----------------------------------------------------------------------------------


def get_communication(session: Session, communication_id: str) -> Communication:
    """A communication by id or by key."""
    found = session.get(Communication, communication_id) or session.scalar(
        select(Communication).where(Communication.key == communication_id)
    )
    if found is None:
        raise CommunicationNotFound(f"communication {communication_id} does not exist",
                                    details={"communication_id": communication_id})
    return found


def create_communication(
    session: Session, *, key: str, name: str, purpose: str, department: str, actor: str, kind: str = "reactive",
    trigger: str = "", regulatory_notes: str = "", default_language: str | None = None,
    channels: Iterable[str] = (), languages: Iterable[str] = (), sample_data: Mapping[str, Any] | None = None,
    content: Mapping[str, Any] | None = None, note: str = "", status: str = "draft",
) -> Communication:
    """A new communication in the inventory, with its first version (a draft) when content is given."""
    if session.scalar(select(Communication.id).where(Communication.key == key)):
        raise KeyTaken(f"a communication with key {key!r} exists already", details={"key": key})
    language = default_language or get_settings().default_language
    communication = Communication(
        id=new_id("com"), key=key, name=name, purpose=purpose, department=department.lower(), kind=kind,
        trigger=trigger, regulatory_notes=regulatory_notes, status=status, default_language=language,
        channels=list(dict.fromkeys(channels)), languages=list(dict.fromkeys(languages)) or [language],
        sample_data=dict(sample_data or {}), created_by=actor, created_at=utcnow(), updated_at=utcnow(),
    )
    try:
        with session.begin_nested():  # another request may have taken the key since the check
            session.add(communication)
    except IntegrityError:
        raise KeyTaken(f"a communication with key {key!r} exists already", details={"key": key}) from None
    audit.record(session, actor=actor, action="communication.create", object_type="communication",
                 object_id=communication.id, key=key, purpose=purpose, department=communication.department)
    if content:
        save_version(session, communication_id=communication.id, content=content, actor=actor, note=note)
    return communication


def update_communication(
    session: Session, *, communication_id: str, actor: str, content: Mapping[str, Any] | None = None,
    note: str = "", **fields: Any,
) -> Communication:
    """Change the inventory fields; new content becomes a new version (versions never change)."""
    communication = get_communication(session, communication_id)
    changed = {}
    for name, value in fields.items():
        if value is None or name not in {"name", "purpose", "department", "kind", "trigger", "regulatory_notes",
                                         "status", "default_language", "channels", "languages", "sample_data"}:
            continue
        value = value.lower() if name == "department" else value
        if getattr(communication, name) != value:
            setattr(communication, name, value)
            changed[name] = value
    if changed:
        communication.updated_at = utcnow()
        audit.record(session, actor=actor, action="communication.update", object_type="communication",
                     object_id=communication.id, fields=sorted(changed))
    if content is not None:
        save_version(session, communication_id=communication.id, content=content, actor=actor, note=note)
    return communication


def save_version(session: Session, *, communication_id: str, content: Mapping[str, Any], actor: str,
                 note: str = "") -> TemplateVersion:
    """Every save is a new draft version: the content validated, its blocks pinned, its hash taken."""
    communication = get_communication(session, communication_id)
    # Two saves at once must not both take the next number (PostgreSQL; SQLite writes one at a time).
    session.execute(select(Communication.id).where(Communication.id == communication.id).with_for_update())
    clean = validate_content(content)
    keys: set[str] = set()
    for channel, languages in clean.items():
        for variant in languages.values():
            for _field, source in template_fields(channel, variant):
                keys |= block_keys(source)
    pinned = block_service.pin(session, keys)
    number = (session.scalar(select(func.max(TemplateVersion.number))
                             .where(TemplateVersion.communication_id == communication.id)) or 0) + 1
    version = TemplateVersion(
        id=new_id("ver"), communication_id=communication.id, number=number, content=clean, blocks=pinned,
        content_sha256=content_sha256(clean, pinned), author=actor, note=note[:500], status="draft",
        findings=[], acknowledged_warnings=[], created_at=utcnow(),
    )
    session.add(version)
    session.flush()
    for key in sorted(pinned):
        session.add(ContentBlockUse(version_id=version.id, block_key=key, communication_id=communication.id))
    communication.latest_version_id = version.id
    communication.channels = list(dict.fromkeys([*communication.channels, *clean]))
    communication.updated_at = utcnow()
    audit.record(session, actor=actor, action="communication.version.save", object_type="communication",
                 object_id=communication.id, version_id=version.id, number=number,
                 content_sha256=version.content_sha256)
    return version


def list_communications(
    session: Session, *, purpose: str | None = None, department: str | None = None, channel: str | None = None,
    status: str | None = None, query: str | None = None,
) -> list[Communication]:
    """The inventory, filtered; ``channel`` matches the channels a communication covers."""
    stmt = select(Communication).order_by(Communication.department, Communication.name)
    if purpose:
        stmt = stmt.where(Communication.purpose == purpose)
    if department:
        stmt = stmt.where(Communication.department == department.lower())
    if status:
        stmt = stmt.where(Communication.status == status)
    if query and query.strip():
        needle = f"%{query.strip().lower()}%"
        stmt = stmt.where(func.lower(Communication.name).like(needle) | Communication.key.like(needle))
    found = list(session.scalars(stmt))
    return [c for c in found if channel in (c.channels or [])] if channel else found


def delivery_stats(session: Session, *, communication_ids: Iterable[str]) -> dict[str, tuple[datetime | None, int]]:
    """Last sent and volume per communication, for the inventory, from the archive of what was sent."""
    from trato.archive import service as archive

    return archive.last_sent_and_volume(session, communication_ids=list(communication_ids))


INVENTORY_COLUMNS = (
    "key", "name", "purpose", "department", "kind", "status", "channels", "languages", "latest_version",
    "latest_version_status", "approved_version", "last_sent_at", "volume", "trigger", "regulatory_notes",
)


def inventory(session: Session, communications: list[Communication]) -> list[dict[str, Any]]:
    """Inventory rows: what is sent, why, on which channels, who owns it, approval and volume."""
    version_ids = {v for c in communications for v in (c.latest_version_id, c.approved_version_id) if v}
    versions = {v.id: v for v in session.scalars(select(TemplateVersion).where(TemplateVersion.id.in_(version_ids)))}
    stats = delivery_stats(session, communication_ids=[c.id for c in communications])
    rows = []
    for c in communications:
        latest, approved = versions.get(c.latest_version_id or ""), versions.get(c.approved_version_id or "")
        last_sent, volume = stats.get(c.id, (None, 0))
        rows.append({
            "id": c.id, "key": c.key, "name": c.name, "purpose": c.purpose, "department": c.department,
            "kind": c.kind, "trigger": c.trigger, "regulatory_notes": c.regulatory_notes, "status": c.status,
            "default_language": c.default_language, "channels": list(c.channels or []),
            "languages": list(c.languages or []),
            "channels_covered": [ch for ch in (latest.content if latest else {})],
            "latest_version": latest.number if latest else None, "latest_version_id": c.latest_version_id,
            "latest_version_status": latest.status if latest else None,
            "approved_version": approved.number if approved else None, "approved_version_id": c.approved_version_id,
            "last_sent_at": last_sent, "volume": volume, "created_by": c.created_by, "created_at": c.created_at,
            "updated_at": c.updated_at,
        })
    return rows


# -- versions and approval ------------------------------------------------------------------------------


def get_version(session: Session, version_id: str) -> TemplateVersion:
    version = session.get(TemplateVersion, version_id)
    if version is None:
        raise VersionNotFound(f"version {version_id} does not exist", details={"version_id": version_id})
    return version


def list_versions(session: Session, *, communication_id: str) -> list[TemplateVersion]:
    """Every version of a communication, newest first."""
    communication = get_communication(session, communication_id)
    return list(session.scalars(select(TemplateVersion).where(TemplateVersion.communication_id == communication.id)
                                .order_by(TemplateVersion.number.desc())))


def comments_of(session: Session, *, version_ids: Iterable[str]) -> dict[str, list[VersionComment]]:
    ids = list(version_ids)
    found: dict[str, list[VersionComment]] = {i: [] for i in ids}
    for row in session.scalars(select(VersionComment).where(VersionComment.version_id.in_(ids))
                               .order_by(VersionComment.id)):
        found[row.version_id].append(row)
    return found


def _comment(session: Session, version: TemplateVersion, actor: str, action: str, body: str) -> None:
    session.add(VersionComment(version_id=version.id, author=actor, action=action, body=body[:5000],
                               created_at=utcnow()))


def add_comment(session: Session, *, version_id: str, actor: str, body: str) -> VersionComment:
    """A comment on a version, in any state."""
    version = get_version(session, version_id)
    row = VersionComment(version_id=version.id, author=actor, action="comment", body=body[:5000], created_at=utcnow())
    session.add(row)
    return row


def preflight(session: Session, *, version_id: str) -> list[Finding]:
    """Every check of a version (errors block submission; warnings need acknowledging)."""
    version = get_version(session, version_id)
    communication = get_communication(session, version.communication_id)
    return preflight_checks.run(session, communication=communication, version=version)


def _audit_decision(session: Session, version: TemplateVersion, actor: str, action: str, **details: Any) -> None:
    audit.record(session, actor=actor, action=f"communication.version.{action}", object_type="communication",
                 object_id=version.communication_id, version_id=version.id, number=version.number,
                 content_sha256=version.content_sha256, **details)


def submit(session: Session, *, version_id: str, actor: str, comment: str = "") -> TemplateVersion:
    """Draft (or changes requested) → in review, when preflight finds no error."""
    version = get_version(session, version_id)
    if version.status not in ("draft", "changes_requested"):
        raise WrongVersionState(f"version {version.number} is {version.status}; only a draft can be submitted",
                                details={"status": version.status})
    findings = preflight(session, version_id=version.id)
    version.findings = [f.to_dict() for f in findings]
    errors = [f.to_dict() for f in findings if f.severity == "error"]
    if errors:
        raise PreflightFailed(f"preflight found {len(errors)} error(s); fix them and save a new version",
                              details=errors)
    version.status, version.submitted_at, version.submitted_by = "in_review", utcnow(), actor
    _comment(session, version, actor, "submitted", comment)
    _audit_decision(session, version, actor, "submit", warnings=sorted({f.code for f in findings}))
    return version


def _reviewable(session: Session, version_id: str, actor: str) -> TemplateVersion:
    version = get_version(session, version_id)
    if version.status != "in_review":
        raise WrongVersionState(f"version {version.number} is {version.status}, not in review",
                                details={"status": version.status})
    if version.author == actor:
        raise SelfApproval("four eyes: the author of a version cannot review it; another person must",
                           details={"author": version.author})
    return version


def approve(session: Session, *, version_id: str, actor: str, comment: str = "",
            acknowledge: Iterable[str] = ()) -> TemplateVersion:
    """In review → approved by someone other than the author, every warning acknowledged.

    The communication's approved version becomes this one (a draft communication turns active).
    """
    version = _reviewable(session, version_id, actor)
    warnings = sorted({f["code"] for f in version.findings or [] if f.get("severity") == "warning"})
    missing = [code for code in warnings if code not in set(acknowledge)]
    if missing:
        raise WarningsNotAcknowledged(
            f"acknowledge every preflight warning to approve: {', '.join(missing)}", details={"missing": missing}
        )
    version.status, version.decided_at, version.decided_by = "approved", utcnow(), actor
    version.acknowledged_warnings = warnings
    communication = get_communication(session, version.communication_id)
    communication.approved_version_id = version.id
    if communication.status == "draft":
        communication.status = "active"
    communication.updated_at = utcnow()
    _comment(session, version, actor, "approved", comment)
    _audit_decision(session, version, actor, "approve", acknowledged=warnings, author=version.author)
    return version


def request_changes(session: Session, *, version_id: str, actor: str, comment: str) -> TemplateVersion:
    """In review → changes requested, with the reviewer's reason."""
    if not comment.strip():
        raise WrongVersionState("say what should change", code="comment_required")
    version = _reviewable(session, version_id, actor)
    version.status, version.decided_at, version.decided_by = "changes_requested", utcnow(), actor
    _comment(session, version, actor, "changes_requested", comment)
    _audit_decision(session, version, actor, "request_changes")
    return version


@dataclass(frozen=True)
class FieldDiff:
    field: str  # channel.language.field
    change: str  # added | removed | changed
    diff: str  # unified diff lines


def _flatten(version: TemplateVersion) -> dict[str, str]:
    flat: dict[str, str] = {}
    for channel, languages in (version.content or {}).items():
        for language, variant in languages.items():
            for name, value in variant.items():
                text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
                flat[f"{channel}.{language}.{name}"] = text
    flat.update({f"blocks.{k}": v for k, v in (version.blocks or {}).items()})
    return flat


def diff_versions(session: Session, *, from_version_id: str, to_version_id: str) -> list[FieldDiff]:
    """A text diff per field between two versions of the same communication."""
    old, new = get_version(session, from_version_id), get_version(session, to_version_id)
    if old.communication_id != new.communication_id:
        raise WrongVersionState("both versions must belong to the same communication", code="versions_unrelated")
    before, after = _flatten(old), _flatten(new)
    diffs: list[FieldDiff] = []
    for field in sorted(set(before) | set(after)):
        a, b = before.get(field), after.get(field)
        if a == b:
            continue
        lines = difflib.unified_diff((a or "").splitlines(), (b or "").splitlines(),
                                     f"v{old.number}/{field}", f"v{new.number}/{field}", lineterm="", n=2)
        diffs.append(FieldDiff(field, "added" if a is None else "removed" if b is None else "changed",
                               "\n".join(lines)))
    return diffs


# -- rendering ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One channel's message for one person, and what reproduces it (version id + context)."""

    parts: Parts
    communication_id: str
    version_id: str
    channel: str
    language: str
    context: dict[str, Any]
    content_sha256: str  # of the rendered parts


def render(
    session: Session, *, communication: Communication | str, channel: str, customer_id: str | None = None,
    sample: Mapping[str, Any] | None = None, language: str | None = None, data: Mapping[str, Any] | None = None,
    version_id: str | None = None, at: datetime | None = None,
) -> Rendered:
    """Render one channel for a real customer or a sample profile, for preview: any version.

    Without ``version_id`` the latest version is used. The language is the asked one, else the
    customer's locale, else the communication's default (the first that the variant has).
    ``at`` is the moment the message is for (default: now), the template's ``now``.
    """
    if isinstance(communication, str):
        communication = get_communication(session, communication)
    chosen_id = version_id or communication.latest_version_id
    if chosen_id is None:
        raise VersionNotFound(f"{communication.key} has no version yet", details={"communication_id": communication.id})
    version = get_version(session, chosen_id)
    if version.communication_id != communication.id:
        raise VersionNotFound(f"version {chosen_id} is not a version of {communication.key}")
    locale = None
    if customer_id:
        locale = rendering.customer_values(session, customer_id)[0].get("locale")
    elif sample:
        locale = sample.get("locale")
    lang = rendering.choose_language(communication, version, channel, language, locale)
    context = rendering.build_context(session, communication=communication, language=lang,
                                      customer_id=customer_id, sample=sample, data=data, at=at)
    parts = rendering.render_parts(session, version=version, channel=channel, language=lang, context=context)
    return Rendered(parts, communication.id, version.id, channel, lang, context, rendering.sha256_of_parts(parts))


def render_for_send(
    session: Session, *, communication_id: str, customer_id: str, channel: str,
    data: Mapping[str, Any] | None = None, language: str | None = None, at: datetime | None = None,
) -> Rendered:
    """What a customer is sent: always the communication's approved version, never a draft.
    ``at``: when it is sent (default: now); a message sent earlier is rendered as it was then."""
    communication = get_communication(session, communication_id)
    if communication.status == "retired":
        raise NotApproved(f"{communication.key} is retired and is not sent", code="communication_retired")
    if communication.approved_version_id is None:
        raise NotApproved(f"{communication.key} has no approved version; it cannot be sent",
                          details={"communication_id": communication.id})
    version = get_version(session, communication.approved_version_id)
    if version.status != "approved":
        raise NotApproved(f"version {version.number} of {communication.key} is {version.status}, not approved")
    return render(session, communication=communication, channel=channel, customer_id=customer_id,
                  language=language, data=data, version_id=version.id, at=at)


def approved_version(session: Session, *, communication_id: str, version_id: str | None = None
                     ) -> tuple[Communication, TemplateVersion]:
    """The communication and the version a bulk send uses: the given one (which must be an
    approved version of it) or its approved version. Raises NotApproved otherwise."""
    communication = get_communication(session, communication_id)
    if communication.status == "retired":
        raise NotApproved(f"{communication.key} is retired and is not sent", code="communication_retired")
    chosen = version_id or communication.approved_version_id
    if chosen is None:
        raise NotApproved(f"{communication.key} has no approved version; it cannot be sent",
                          details={"communication_id": communication.id})
    version = get_version(session, chosen)
    if version.communication_id != communication.id or version.status != "approved":
        raise NotApproved(f"version {version.number} of {communication.key} is {version.status}, not approved",
                          details={"version_id": version.id})
    return communication, version


def render_many(
    session: Session, *, communication_id: str, items: Iterable[tuple[str, str]], version_id: str | None = None,
    data: Mapping[str, Any] | None = None, at: datetime | None = None, failed: dict[str, str] | None = None,
    message_ids: Mapping[str, str] | None = None, loaded: Mapping[str, Any] | None = None,
) -> dict[str, Rendered]:
    """What many customers are sent, each on their channel: ``items`` are (customer_id, channel);
    ``message_ids`` (by customer), when the messages' ids are known already, go into their links;
    ``loaded``: the profiles as ``customers.load_profiles`` read them already.

    The bulk form of :func:`render_for_send`: profiles are read in a few queries and the compiled
    templates and content blocks are shared, so per customer only the template runs.
    Customers whose message cannot be rendered are left out of the result (and their template
    error is put in ``failed`` when given).
    """
    communication, version = approved_version(session, communication_id=communication_id, version_id=version_id)
    failed = failed if failed is not None else {}
    wanted = list(items)
    values = rendering.customer_values_many(session, [cid for cid, _ in wanted], loaded=loaded)
    shared = rendering.json_safe(dict(data if data is not None else communication.sample_data or {}))
    blocks: dict[str, dict[str, str]] = {}
    found: dict[str, Rendered] = {}
    for customer_id, channel in wanted:
        loaded = values.get(customer_id)
        if loaded is None:
            continue
        lang = rendering.choose_language(communication, version, channel, None, loaded[0].get("locale"))
        if lang not in blocks:
            blocks[lang] = rendering.block_texts(session, version, lang)
        context = rendering.build_context(session, communication=communication, language=lang,
                                          customer_id=customer_id, data=shared, at=at, values=loaded,
                                          trusted_data=True,
                                          message_id=message_ids.get(customer_id) if message_ids else None)
        try:
            parts = rendering.render_parts(session, version=version, channel=channel, language=lang,
                                           context=context, blocks=blocks[lang])
        except TemplateError as exc:  # one customer's data must not stop everyone else's message
            failed[customer_id] = exc.message
            continue
        found[customer_id] = Rendered(parts, communication.id, version.id, channel, lang, context, "")
    return found


def reproduce(session: Session, *, version_id: str, channel: str, language: str,
              context: Mapping[str, Any]) -> Parts:
    """The same bytes again from an archived version id and render context."""
    version = get_version(session, version_id)
    return rendering.render_parts(session, version=version, channel=channel, language=language, context=context)


def postal_address(session: Session, *, customer_id: str, language: str = "es") -> list[str]:
    """The lines a letter to this customer shows in its envelope window (name first); empty
    when the profile has no street address."""
    from trato.content import channel_parts

    profile, _identities, _computed = rendering.customer_values(session, customer_id)
    return channel_parts.address_lines(profile, language=language)
