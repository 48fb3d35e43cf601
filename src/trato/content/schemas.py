"""Shapes of the content domain: channel variants (validated before a version is stored) and the
API's input and output."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from trato.content.errors import InvalidContent
from trato.content.models import BLOCK_KINDS, KINDS, PURPOSES, STATUSES
from trato.core.channels import CHANNELS
from trato.core.i18n import LANGUAGES

TEXT: Final = 100_000  # characters in one field: far more than any message, far less than a bomb


class _Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=TEXT)


class EmailVariant(_Variant):
    subject: str = Field(min_length=1, max_length=998)
    preheader: str = ""
    body_mjml: str = ""
    body_html: str = ""
    text: str = ""  # the plain-text part; generated from the HTML when empty

    @model_validator(mode="after")
    def _one_body(self) -> EmailVariant:
        if bool(self.body_mjml.strip()) == bool(self.body_html.strip()):
            raise ValueError("give exactly one of body_mjml and body_html")
        return self


class SmsVariant(_Variant):
    text: str = Field(min_length=1, max_length=2000)


class WhatsAppButton(_Variant):
    type: Literal["quick_reply", "url", "phone_number"]
    text: str = Field(min_length=1, max_length=25)
    url: str = ""  # may end in {{1}}: the button's parameter is rendered from url_param
    url_param: str = ""
    phone_number: str = ""


class WhatsAppVariant(_Variant):
    """An approved Meta template (numbered ``{{1}}`` variables filled from ``params``) or a free-form
    session message (``text``), which only reaches people who wrote in the last 24 hours."""

    mode: Literal["template", "session"] = "template"
    template_name: str = Field(default="", max_length=512, pattern=r"^[a-z0-9_]*$")
    category: Literal["marketing", "utility", "authentication"] = "utility"
    header: str = Field(default="", max_length=60)
    header_params: list[str] = Field(default_factory=list, max_length=1)
    body: str = Field(default="", max_length=1024)
    params: list[str] = Field(default_factory=list, max_length=20)
    footer: str = Field(default="", max_length=60)
    buttons: list[WhatsAppButton] = Field(default_factory=list, max_length=10)
    text: str = Field(default="", max_length=4096)

    @model_validator(mode="after")
    def _complete(self) -> WhatsAppVariant:
        if self.mode == "template" and not (self.template_name and self.body):
            raise ValueError("a template message needs template_name and body")
        if self.mode == "session" and not self.text:
            raise ValueError("a session message needs text")
        return self


class PushVariant(_Variant):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=2000)
    image: str = ""
    deep_link: str = ""


class VoiceVariant(_Variant):
    ssml: str = Field(min_length=1)


class LetterVariant(_Variant):
    title: str = Field(min_length=1, max_length=200)
    body_html: str = Field(min_length=1)


class WebVariant(_Variant):
    html: str = Field(min_length=1)


class WebhookVariant(_Variant):
    """A signed JSON POST to the company's own system: an event type (fixed), an optional text
    and named fields, each a template rendered to a string (JSON is built from them, never from
    template output, so a customer's value cannot change the payload's shape)."""

    event_type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    text: str = ""
    data: dict[str, str] = Field(default_factory=dict, max_length=100)

    @field_validator("data")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name or len(name) > 100 or not all(c.isalnum() or c in "_.-" for c in name):
                raise ValueError(f"field name {name!r}: letters, digits, _ . - (at most 100)")
        return value


VARIANTS: Final[dict[str, type[_Variant]]] = {
    "email": EmailVariant, "sms": SmsVariant, "whatsapp": WhatsAppVariant, "push": PushVariant,
    "voice": VoiceVariant, "letter": LetterVariant, "web": WebVariant, "webhook": WebhookVariant,
}
assert set(VARIANTS) == set(CHANNELS)

# Template fields rendered as HTML or XML: customer values in them are escaped.
MARKUP_FIELDS: Final[frozenset[tuple[str, str]]] = frozenset({
    ("email", "body_mjml"), ("email", "body_html"), ("letter", "body_html"), ("web", "html"), ("voice", "ssml"),
})
# Fields that are not templates (fixed by the provider or a kind of value).
PLAIN_FIELDS: Final[frozenset[str]] = frozenset({"mode", "template_name", "category", "type", "phone_number",
                                                "event_type"})

# A WhatsApp template's texts are Meta's (numbered {{1}} variables), not Jinja: only the values are.
META_FIELDS: Final[frozenset[tuple[str, str]]] = frozenset(
    {("whatsapp", "header"), ("whatsapp", "body"), ("whatsapp", "footer")}
)
_language_map = TypeAdapter(dict[str, dict[str, Any]])


def validate_content(content: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """``{channel: {language: variant}}`` checked field by field; the normalised JSON to store."""
    try:
        by_channel = _language_map.validate_python(content)
    except ValidationError:
        raise InvalidContent("content must be an object {channel: {language: {field: text}}}") from None
    clean: dict[str, dict[str, dict[str, Any]]] = {}
    problems: list[dict[str, str]] = []
    for channel, languages in by_channel.items():
        if channel not in VARIANTS:
            problems.append({"field": channel, "message": f"unknown channel; use one of {', '.join(CHANNELS)}"})
            continue
        clean[channel] = {}
        for language, variant in languages.items():
            if language not in LANGUAGES:
                problems.append({"field": f"{channel}.{language}", "message": "language must be es or en"})
                continue
            try:
                model = VARIANTS[channel].model_validate(variant)
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(p) for p in (channel, language, *err["loc"]))
                    problems.append({"field": where, "message": err["msg"]})
                continue
            clean[channel][language] = model.model_dump(exclude_defaults=True, mode="json")
            if channel == "whatsapp":
                clean[channel][language].setdefault("mode", model.mode)
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise InvalidContent(f"the content is not valid: {summary}", details=problems)
    return clean


def template_fields(channel: str, variant: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, template text) of a variant: the texts rendered with the customer's values."""
    fields: list[tuple[str, str]] = []
    for name, value in variant.items():
        if name in PLAIN_FIELDS or (channel, name) in META_FIELDS:
            continue
        if isinstance(value, str):
            fields.append((name, value))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    fields.append((f"{name}.{index}", item))
                elif isinstance(item, dict):
                    fields.extend((f"{name}.{index}.{k}", v) for k, v in item.items()
                                  if isinstance(v, str) and k not in PLAIN_FIELDS
                                  and not (channel == "whatsapp" and k in ("text", "url")))
        elif isinstance(value, dict):  # a webhook's named fields
            fields.extend((f"{name}.{k}", v) for k, v in value.items() if isinstance(v, str))
    return fields


# -- API ---------------------------------------------------------------------------------------------


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}")
    return value


class CommunicationFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    purpose: str | None = None
    department: str | None = Field(default=None, min_length=1, max_length=64)
    kind: str | None = None
    trigger: str | None = Field(default=None, max_length=5000)
    regulatory_notes: str | None = Field(default=None, max_length=5000)
    status: str | None = None
    default_language: str | None = None
    channels: list[str] | None = None
    languages: list[str] | None = None
    sample_data: dict[str, Any] | None = Field(default=None, description="an example of the trigger's data")

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, v: str | None) -> str | None:
        return None if v is None else _choice(v, PURPOSES, "purpose")

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        return None if v is None else _choice(v, KINDS, "kind")

    @field_validator("status")
    @classmethod
    def _status(cls, v: str | None) -> str | None:
        return None if v is None else _choice(v, STATUSES, "status")

    @field_validator("default_language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        return None if v is None else _choice(v, LANGUAGES, "default_language")

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_choice(c, CHANNELS, "each channel") for c in dict.fromkeys(v)]

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_choice(c, LANGUAGES, "each language") for c in dict.fromkeys(v)]


class CommunicationIn(CommunicationFields):
    key: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=200)
    purpose: str
    department: str = Field(min_length=1, max_length=64)
    kind: str = "reactive"
    content: dict[str, Any] = Field(default_factory=dict)
    note: str = Field(default="", max_length=500)


class CommunicationPatch(CommunicationFields):
    content: dict[str, Any] | None = None
    note: str = Field(default="", max_length=500)


class VersionOut(BaseModel):
    id: str
    communication_id: str
    number: int
    status: str
    author: str
    note: str
    content_sha256: str
    content: dict[str, Any]
    blocks: dict[str, str]
    findings: list[dict[str, Any]]
    acknowledged_warnings: list[str]
    submitted_at: datetime | None
    submitted_by: str | None
    decided_at: datetime | None
    decided_by: str | None
    created_at: datetime
    comments: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(cls, version: Any, comments: list[Any] | None = None) -> VersionOut:
        return cls(
            id=version.id, communication_id=version.communication_id, number=version.number,
            status=version.status, author=version.author, note=version.note,
            content_sha256=version.content_sha256, content=version.content, blocks=version.blocks or {},
            findings=version.findings or [], acknowledged_warnings=version.acknowledged_warnings or [],
            submitted_at=version.submitted_at, submitted_by=version.submitted_by,
            decided_at=version.decided_at, decided_by=version.decided_by, created_at=version.created_at,
            comments=[{"author": c.author, "action": c.action, "body": c.body, "at": c.created_at.isoformat()}
                      for c in comments or []],
        )


class CommunicationOut(BaseModel):
    id: str
    key: str
    name: str
    purpose: str
    department: str
    kind: str
    trigger: str
    regulatory_notes: str
    status: str
    default_language: str
    channels: list[str]
    languages: list[str]
    channels_covered: list[str]
    latest_version: int | None
    latest_version_id: str | None
    latest_version_status: str | None
    approved_version: int | None
    approved_version_id: str | None
    last_sent_at: datetime | None = None
    volume: int | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime


class CommunicationList(BaseModel):
    items: list[CommunicationOut]


class VersionList(BaseModel):
    items: list[VersionOut]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=5000)
    acknowledge: list[str] = Field(default_factory=list, max_length=200, description="warning codes acknowledged")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, max_length=40)
    sample: dict[str, Any] | None = Field(default=None, description="a sample profile's traits")
    language: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="the trigger's data")
    version_id: str | None = Field(default=None, max_length=40)
    channels: list[str] | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        return None if v is None else _choice(v, LANGUAGES, "language")

    @field_validator("data", "sample")
    @classmethod
    def _json_storable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        try:
            orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:  # e.g. an integer past 64 bits, which templates' JSON cannot carry
            raise ValueError(f"cannot be used as template data: {exc}") from None
        return value


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    kind: str
    name: str = Field(min_length=1, max_length=200)
    body: dict[str, str]

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        return _choice(v, BLOCK_KINDS, "kind")


class BlockPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    body: dict[str, str] | None = None


class BlockOut(BaseModel):
    id: str
    key: str
    kind: str
    name: str
    version: int
    version_id: str
    body: dict[str, str]
    used_by: list[dict[str, str]]
