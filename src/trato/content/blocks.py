"""Content blocks: header, footer, legal text and signature shared by many communications.

A communication version pins the block versions it includes when it is saved, so an approved
message never changes under its approver's eyes; :func:`used_by` shows who must save a new
version to take up a changed block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trato.content.errors import BlockNotFound, InvalidContent, KeyTaken
from trato.content.models import Communication, ContentBlock, ContentBlockUse, ContentBlockVersion, TemplateVersion
from trato.content.templating import compile_template
from trato.core import audit
from trato.core.clock import utcnow
from trato.core.i18n import LANGUAGES
from trato.core.ids import new_id


def _check_body(body: Mapping[str, str]) -> dict[str, str]:
    if not body:
        raise InvalidContent("a block needs its text in at least one language", code="invalid_block")
    clean: dict[str, str] = {}
    for language, text in body.items():
        if language not in LANGUAGES:
            raise InvalidContent(f"block language must be one of {', '.join(LANGUAGES)}", code="invalid_block")
        if not isinstance(text, str) or len(text) > 50_000:
            raise InvalidContent("a block's text must be at most 50,000 characters", code="invalid_block")
        compile_template(text, autoescape=True)  # a syntax error is found when saving, not when sending
        clean[language] = text
    return clean


def get_block(session: Session, block_id: str) -> ContentBlock:
    """A block by id or key."""
    found = session.get(ContentBlock, block_id) or session.scalar(select(ContentBlock).where(ContentBlock.key == block_id))
    if found is None:
        raise BlockNotFound(f"content block {block_id} does not exist", details={"block": block_id})
    return found


def latest_version(session: Session, block: ContentBlock) -> ContentBlockVersion:
    version = session.get(ContentBlockVersion, block.latest_version_id) if block.latest_version_id else None
    assert version is not None, "every block has a version"
    return version


def _new_version(session: Session, block: ContentBlock, body: dict[str, str], actor: str) -> ContentBlockVersion:
    number = (session.scalar(select(func.max(ContentBlockVersion.number))
                             .where(ContentBlockVersion.block_id == block.id)) or 0) + 1
    version = ContentBlockVersion(
        id=new_id("blv"), block_id=block.id, number=number, body=body, author=actor, created_at=utcnow(),
        content_sha256=hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest(),
    )
    session.add(version)
    session.flush()
    block.latest_version_id = version.id
    block.updated_at = utcnow()
    return version


def create_block(session: Session, *, key: str, kind: str, name: str, body: Mapping[str, str],
                 actor: str) -> ContentBlock:
    """A new block with its first version."""
    if session.scalar(select(ContentBlock.id).where(ContentBlock.key == key)):
        raise KeyTaken(f"a content block with key {key!r} exists already", details={"key": key})
    block = ContentBlock(id=new_id("blk"), key=key, kind=kind, name=name, created_at=utcnow(), updated_at=utcnow())
    session.add(block)
    session.flush()
    version = _new_version(session, block, _check_body(body), actor)
    audit.record(session, actor=actor, action="content_block.create", object_type="content_block",
                 object_id=block.id, key=key, version_id=version.id, content_sha256=version.content_sha256)
    return block


def update_block(session: Session, *, block_id: str, actor: str, name: str | None = None,
                 body: Mapping[str, str] | None = None) -> ContentBlock:
    """Rename a block or save a new text (a new block version; communications keep theirs)."""
    block = get_block(session, block_id)
    if name:
        block.name = name
    if body is not None:
        version = _new_version(session, block, _check_body(body), actor)
        audit.record(session, actor=actor, action="content_block.update", object_type="content_block",
                     object_id=block.id, version_id=version.id, content_sha256=version.content_sha256)
    return block


def list_blocks(session: Session) -> list[ContentBlock]:
    return list(session.scalars(select(ContentBlock).order_by(ContentBlock.kind, ContentBlock.key)))


def pin(session: Session, keys: Iterable[str]) -> dict[str, str]:
    """The latest version id of each named block (for a version being saved)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = {b.key: b.latest_version_id for b in session.scalars(select(ContentBlock).where(ContentBlock.key.in_(wanted)))}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise InvalidContent(f"there is no content block {', '.join(map(repr, missing))}", code="unknown_block",
                             details={"blocks": missing})
    return {k: str(v) for k, v in found.items()}


def used_by(session: Session, *, block_key: str) -> list[dict[str, Any]]:
    """Communications whose latest version includes the block, and whether they use its newest text."""
    block = get_block(session, block_key)
    rows = session.execute(
        select(Communication, TemplateVersion)
        .join(ContentBlockUse, ContentBlockUse.communication_id == Communication.id)
        .join(TemplateVersion, TemplateVersion.id == ContentBlockUse.version_id)
        .where(ContentBlockUse.block_key == block.key, Communication.latest_version_id == ContentBlockUse.version_id)
        .order_by(Communication.name)
    ).all()
    return [
        {"communication_id": c.id, "key": c.key, "name": c.name, "version": str(v.number),
         "current": "yes" if (v.blocks or {}).get(block.key) == block.latest_version_id else "no"}
        for c, v in rows
    ]
