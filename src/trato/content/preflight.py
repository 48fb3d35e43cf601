"""Preflight: what is checked before a version can be submitted for approval.

Errors block submission; warnings must be acknowledged by the approver (recorded with the
approval). Every variant is also rendered with the sample profile of its language and the
communication's sample data, so a template that only fails with real values shows up here.

Codes: ``missing_variant``, ``missing_language``, ``unknown_variable``, ``template_*`` (from
templating), ``sample_missing_value``, ``malformed_link``, ``insecure_link``, ``email.*``
(from the e-mail checks), ``sms.segments``, ``sms.ucs2_by_value``, ``sms.no_opt_out``,
``whatsapp.*``, ``push.*``, ``voice.*``, ``promotional_as_transactional``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from trato.content import channel_parts
from trato.content import email as email_kit
from trato.content import rendering, sms
from trato.content.errors import TemplateError
from trato.content.findings import Finding
from trato.content.models import Communication, TemplateVersion
from trato.content.schemas import template_fields
from trato.content.templating import unknown_variables
from trato.core.settings import get_settings

_URL = re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)["']|(\b(?:https?|ftp)://[^\s<>"']+)""", re.IGNORECASE)
_OPT_OUT = re.compile(r"\b(stop|baja|unsubscribe|cancelar)\b", re.IGNORECASE)
# Words that make a message promotional: sent as transactional it would skip consent and quiet hours.
_PROMOTIONAL = re.compile(
    r"\b(offer|discount|sale|promo(tion)?|free gift|% off|oferta|descuento|rebajas|promoci[oó]n|regalo|gratis)\b",
    re.IGNORECASE,
)
NON_MARKETING: Final = frozenset({"transactional", "service", "payment"})


def _link_findings(channel: str, language: str, text: str) -> list[Finding]:
    found: list[Finding] = []
    for match in _URL.finditer(text):
        url = (match.group(1) or match.group(2) or "").strip()
        if not url or url.startswith(("mailto:", "tel:", "sms:", "#", "cid:", "{{")):
            continue
        where = {"channel": channel, "language": language, "url": url[:300]}
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
            found.append(Finding("malformed_link", "error", f"{channel}/{language}: not a web address: {url[:80]}", where))
        elif parts.scheme == "http":
            found.append(Finding("insecure_link", "warning", f"{channel}/{language}: link is not HTTPS: {url[:80]}", where))
    return found


def _variables(channel: str, language: str, variant: dict[str, Any], blocks: dict[str, str]) -> list[Finding]:
    found: list[Finding] = []
    for field, source in template_fields(channel, variant):
        try:
            unknown = unknown_variables(source, blocks=blocks)
        except TemplateError as exc:
            found.append(Finding(exc.code, "error", f"{channel}/{language}/{field}: {exc.message}",
                                 {"channel": channel, "language": language, "field": field}))
            continue
        for name in sorted(unknown):
            found.append(Finding("unknown_variable", "error",
                                 f"{channel}/{language}/{field}: {name!r} is not something a message can use",
                                 {"channel": channel, "language": language, "field": field, "variable": name}))
    return found


def _channel_checks(communication: Communication, channel: str, language: str, variant: dict[str, Any],
                    parts: dict[str, Any]) -> list[Finding]:
    marketing = communication.purpose == "marketing"
    where = {"channel": channel, "language": language}
    found: list[Finding] = []
    if channel == "email":
        for f in email_kit.email_checks(str(parts["html"]), marketing=marketing):
            found.append(Finding(f.code, f.severity, f"{language}: {f.message}", {**f.detail, **where}))
    elif channel == "sms":
        analysis = sms.analyse(str(parts["text"]))
        price = Decimal(str(get_settings().sms_price_per_segment))
        detail = {**where, **analysis.to_dict(), "cost": str(sms.cost_estimate(analysis, price))}
        if analysis.segments > 1:
            found.append(Finding("sms.segments", "warning",
                                 f"{language}: {analysis.segments} segments ({analysis.encoding}), "
                                 f"about {detail['cost']} per message", detail))
        warning = sms.personalisation_warning(variant["text"], str(parts["text"]))
        if warning is not None:
            found.append(Finding(warning.code, warning.severity, f"{language}: {warning.message}",
                                 {**warning.detail, **where}))
        if marketing and not _OPT_OUT.search(str(parts["text"])):
            found.append(Finding("sms.no_opt_out", "warning",
                                 f"{language}: a marketing SMS should say how to stop (e.g. 'BAJA al 217xx')", where))
    else:
        found.extend(channel_parts.checks(channel, language, variant, parts, marketing=marketing))
    if channel != "email":
        for text in parts.values():
            if isinstance(text, str):
                found.extend(_link_findings(channel, language, text))
    if communication.purpose in NON_MARKETING:
        for text in parts.values():
            hit = _PROMOTIONAL.search(text) if isinstance(text, str) else None
            if hit:
                found.append(Finding(
                    "promotional_as_transactional", "warning",
                    f"{channel}/{language}: '{hit.group(0)}' reads as promotion in a {communication.purpose} message; "
                    "sent as such it would ignore marketing consent and quiet hours", {**where, "word": hit.group(0)},
                ))
                break
    return found


def run(session: Session, *, communication: Communication, version: TemplateVersion) -> list[Finding]:
    """Every finding for a version: coverage, variables, and each rendered variant's checks."""
    content = version.content or {}
    findings: list[Finding] = []
    for channel in communication.channels or []:
        if channel not in content:
            findings.append(Finding("missing_variant", "error", f"there is no {channel} variant",
                                    {"channel": channel}))
    for channel, variants in content.items():
        for language in communication.languages or []:
            if language not in variants:
                findings.append(Finding("missing_language", "error", f"the {channel} variant has no {language} text",
                                        {"channel": channel, "language": language}))
    for channel, variants in content.items():
        for language, variant in variants.items():
            blocks = rendering.block_texts(session, version, language)
            problems = _variables(channel, language, variant, blocks)
            findings.extend(problems)
            if problems:
                continue
            context = rendering.build_context(session, communication=communication, language=language)
            try:
                parts = rendering.render_parts(session, version=version, channel=channel, language=language,
                                               context=context, documents=False)
            except TemplateError as exc:
                undefined = exc.code == "template_undefined_variable"
                findings.append(Finding(
                    "sample_missing_value" if undefined else exc.code, "warning" if undefined else "error",
                    f"{channel}/{language}: with the sample profile: {exc.message}",
                    {"channel": channel, "language": language, **(exc.details or {})},
                ))
                continue
            findings.extend(_channel_checks(communication, channel, language, variant, parts))
    return findings

