"""Console pages of segments: the list (``/segments``), the condition builder for a new or saved
segment with its live count and sample, snapshots, and static lists uploaded as CSV.

Every page works as plain forms; with htmx the count and sample follow the builder as it changes.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from trato.audiences import builder, service
from trato.audiences.errors import SegmentNotFound
from trato.console import session as sessions
from trato.console.service import Principal
from trato.console.web import NAV, NavEntry, error_page, is_fragment_request, language, page_router, render, requires
from trato.core import i18n
from trato.core.channels import CHANNEL_LABELS, CHANNELS
from trato.core.errors import TratoError
from trato.core.http import db_read_session, db_session
from trato.core.i18n import N_

router = page_router(prefix="/segments")
NAV.append(NavEntry("/segments", N_("Segments")))

SAMPLE = 10
BLANK_ROWS = 2
KIND_LABELS = {"dynamic": N_("Conditions"), "static": N_("Static list")}
ERROR_LABELS = {
    "invalid_segment": N_("A condition is not complete or not valid"),
    "segment_cycle": N_("Segments would refer to each other in a cycle"),
    "unknown_segment": N_("The segment referred to does not exist"),
    "segment_too_deep": N_("The conditions are nested too deeply"),
    "segment_too_large": N_("There are too many conditions"),
    "segment_name_taken": N_("Another segment has this name"),
    "invalid_name": N_("A segment needs a name"),
    "segment_in_use": N_("Other segments refer to this one"),
}


def _tr(lang: str, labels: dict[str, str]) -> dict[str, str]:
    return {key: i18n.gettext(lang, msgid) for key, msgid in labels.items()}


def _problem(lang: str, exc: TratoError) -> dict[str, Any]:
    details = exc.details if isinstance(exc.details, dict) else {}
    return {"code": exc.code, "label": i18n.gettext(lang, ERROR_LABELS.get(exc.code, ERROR_LABELS["invalid_segment"])),
            "message": exc.message, "path": details.get("path", "")}


def _builder_context(request: Request, session: Session, *, segment: Any, match: str, rows: list[dict[str, str]],
                     json_text: str, **extra: Any) -> dict[str, Any]:
    lang = language(request)
    blank = {name: "" for name in builder.FIELDS}
    return {
        "segment": segment, "match": match, "rows": [*rows, *([blank] * BLANK_ROWS)][: builder.MAX_ROWS],
        "json_text": json_text, "row_types": _tr(lang, builder.ROW_TYPES), "ops": _tr(lang, builder.OPS),
        "channels": {c: i18n.gettext(lang, CHANNEL_LABELS[c]) for c in CHANNELS},
        "others": [s for s in service.list_segments(session) if segment is None or s.id != segment.id],
        "kind_labels": _tr(lang, KIND_LABELS), **extra,
    }


@router.get("")
def list_page(request: Request, session: Session = Depends(db_read_session),
              _: Principal = Depends(requires("viewer"))) -> Response:
    lang = language(request)
    return render(request, "audiences/segments.html", segments=service.list_segments(session),
                  kind_labels=_tr(lang, KIND_LABELS))


@router.get("/new")
def new_page(request: Request, session: Session = Depends(db_read_session),
             _: Principal = Depends(requires("editor"))) -> Response:
    return render(request, "audiences/segment.html",
                  **_builder_context(request, session, segment=None, match="and", rows=[], json_text="",
                                     form={"name": "", "description": "", "kind": "dynamic"}, preview=None))


@router.get("/{segment_id}/count")
def count_fragment(request: Request, segment_id: str, session: Session = Depends(db_read_session),
                   _: Principal = Depends(requires("viewer"))) -> Response:
    """The count of one segment, loaded after the list page so that the list itself is instant."""
    try:
        found: int | None = service.count(session, segment_id=segment_id)
    except TratoError:
        found = None
    return render(request, "audiences/_count.html", count=found)


def _preview(request: Request, session: Session, definition: Any) -> dict[str, Any]:
    if definition is None:
        return {"empty": True}
    try:
        found = service.preview(session, definition=definition, limit=SAMPLE)
    except TratoError as exc:
        return {"problem": _problem(language(request), exc)}
    return found


@router.post("/preview")
async def preview_fragment(request: Request, session: Session = Depends(db_read_session),
                           _: Principal = Depends(requires("viewer"))) -> Response:
    """The live count and sample of the builder's current (unsaved) conditions."""
    form = await request.form()
    if not sessions.csrf_valid(sessions.load(request), str(form.get("csrf", ""))):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    return render(request, "audiences/_preview.html", preview=_preview(request, session, builder.tree_from_form(form)))


@router.post("")
async def create(request: Request, session: Session = Depends(db_session),
                 principal: Principal = Depends(requires("editor"))) -> Response:
    form = await request.form()
    if not sessions.csrf_valid(sessions.load(request), str(form.get("csrf", ""))):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    kind = "static" if form.get("kind") == "static" else "dynamic"
    definition = builder.tree_from_form(form) if kind == "dynamic" else None
    try:
        segment = service.create_segment(session, name=str(form.get("name", ""))[:200],
                                         description=str(form.get("description", ""))[:500], kind=kind,
                                         definition=definition if kind == "dynamic" else None, actor=principal.actor)
    except TratoError as exc:
        session.rollback()
        return _refused(request, session, exc, None, form, definition)
    session.commit()
    return RedirectResponse(f"/segments/{segment.id}", status_code=303)


def _refused(request: Request, session: Session, exc: TratoError, segment: Any, form: Any,
             definition: Any) -> Response:
    json_text = str(form.get("definition_json", "") or "")
    context = _builder_context(
        request, session, segment=segment, match="or" if form.get("match") == "or" else "and",
        rows=builder.rows_from_form(form), json_text=json_text,
        form={"name": str(form.get("name", ""))[:200], "description": str(form.get("description", ""))[:500],
              "kind": "static" if form.get("kind") == "static" else "dynamic"},
        preview={"problem": _problem(language(request), exc)},
    )
    return render(request, "audiences/segment.html", status_code=exc.status_code, **context)


@router.get("/{segment_id}")
def segment_page(request: Request, segment_id: str, session: Session = Depends(db_read_session),
                 _: Principal = Depends(requires("viewer"))) -> Response:
    try:
        segment = service.get_segment(session, segment_id)
    except SegmentNotFound:
        return error_page(request, 404, N_("No segment has this id."))
    match, rows, json_text = builder.form_of(segment.definition)
    context = _builder_context(request, session, segment=segment, match=match, rows=rows, json_text=json_text,
                               form={"name": segment.name, "description": segment.description, "kind": segment.kind},
                               snapshots=service.list_snapshots(session, segment_id=segment.id)[:20])
    try:
        context["preview"] = {"count": service.count(session, segment_id=segment.id),
                              "sample": service.sample(session, segment_id=segment.id, limit=SAMPLE)}
    except TratoError as exc:
        context["preview"] = {"problem": _problem(language(request), exc)}
    return render(request, "audiences/segment.html", **context)


@router.post("/{segment_id}")
async def save(request: Request, segment_id: str, session: Session = Depends(db_session),
               principal: Principal = Depends(requires("editor"))) -> Response:
    form = await request.form()
    if not sessions.csrf_valid(sessions.load(request), str(form.get("csrf", ""))):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    segment = service.get_segment(session, segment_id)
    definition = builder.tree_from_form(form) if segment.kind == "dynamic" else None
    try:
        if segment.kind == "dynamic" and definition is None:
            raise service.InvalidSegment("a segment needs at least one condition", details={"path": "conditions"})
        service.update_segment(session, segment_id=segment.id, actor=principal.actor,
                               name=str(form.get("name", ""))[:200], description=str(form.get("description", ""))[:500],
                               definition=definition)
    except TratoError as exc:
        session.rollback()
        return _refused(request, session, exc, service.get_segment(session, segment_id), form, definition)
    session.commit()
    return RedirectResponse(f"/segments/{segment.id}", status_code=303)


@router.post("/{segment_id}/delete")
def delete(request: Request, segment_id: str, csrf: str = Form(""), session: Session = Depends(db_session),
           principal: Principal = Depends(requires("editor"))) -> Response:
    if not sessions.csrf_valid(sessions.load(request), csrf):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    try:
        service.delete_segment(session, segment_id=segment_id, actor=principal.actor)
    except TratoError as exc:
        session.rollback()
        if exc.status_code == 404:
            return error_page(request, 404, N_("No segment has this id."))
        return error_page(request, 409, ERROR_LABELS.get(exc.code, ERROR_LABELS["segment_in_use"]))
    session.commit()
    return RedirectResponse("/segments", status_code=303)


@router.post("/{segment_id}/snapshots")
def snapshot(request: Request, segment_id: str, csrf: str = Form(""), session: Session = Depends(db_session),
             principal: Principal = Depends(requires("editor"))) -> Response:
    if not sessions.csrf_valid(sessions.load(request), csrf):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    service.take_snapshot(session, segment_id=segment_id, actor=principal.actor)
    session.commit()
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/{segment_id}/list")
async def upload(request: Request, segment_id: str, csrf: str = Form(""), file: UploadFile = File(...),
                 session: Session = Depends(db_session), principal: Principal = Depends(requires("editor"))) -> Response:
    if not sessions.csrf_valid(sessions.load(request), csrf):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    data = await file.read(5 * 1024 * 1024 + 1)
    try:
        text = data.decode("utf-8")
        if len(data) > 5 * 1024 * 1024 or "\x00" in text:
            raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "too large or binary")
        found = service.upload_list(session, segment_id=segment_id, data=text, actor=principal.actor, replace=True)
    except (UnicodeDecodeError, TratoError):
        session.rollback()
        return error_page(request, 400, N_("The list must be a CSV file of customer ids, e-mails or phone numbers."))
    session.commit()
    segment = service.get_segment(session, segment_id)
    if is_fragment_request(request):
        return render(request, "audiences/_upload.html", upload=found)
    context = _builder_context(request, session, segment=segment, match="and", rows=[], json_text="",
                               form={"name": segment.name, "description": segment.description, "kind": segment.kind},
                               snapshots=service.list_snapshots(session, segment_id=segment.id)[:20], upload=found,
                               preview={"count": service.count(session, segment_id=segment.id),
                                        "sample": service.sample(session, segment_id=segment.id, limit=SAMPLE)})
    return render(request, "audiences/segment.html", **context)
