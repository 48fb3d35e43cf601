"""WhatsApp: Meta Cloud API message payloads and checks of template variables and limits.

Interface (stable; the content domain calls these):

- ``template_message(to, definition, params) -> dict``: the JSON body of
  ``POST /{phone-number-id}/messages`` for a template message.
- ``text_message(to, body, *, preview_url=False) -> dict``: a free-form session message
  (only inside the 24-hour customer-service window).
- ``check_template(definition, params=None) -> list[Finding]``: the template's own limits and,
  with ``params``, whether the values fit its numbered variables.
- ``preview(definition, params) -> dict``: header, body, footer and buttons with the values
  filled in, for the chat-bubble preview.

``definition`` is the template as created at Meta (``POST /{waba-id}/message_templates``)
and kept with the version: ``{"name", "language", "category": MARKETING | UTILITY |
AUTHENTICATION, "components": [{"type": "HEADER", "format": "TEXT" | "IMAGE" | "VIDEO" |
"DOCUMENT", "text"}, {"type": "BODY", "text"}, {"type": "FOOTER", "text"}, {"type":
"BUTTONS", "buttons": [{"type": "QUICK_REPLY" | "URL" | "PHONE_NUMBER" | "COPY_CODE" | "OTP",
"text", "url"}]}]}`` with positional variables ``{{1}}..{{n}}`` per component.

``params`` holds the rendered values: ``{"header": ["F-1"]`` or ``{"link": "https://..",
"filename": ".."}`` for a media header, ``"body": ["Ana", "48,20 €"], "buttons": {"0": "tok"}}``
- one value per button that takes one: a URL button's variable suffix, a quick reply's
payload, a COPY_CODE coupon, an OTP button's code.

Limits checked (Meta's): name ``[a-z0-9_]`` up to 512; header text 60 characters with at most
one variable; body 1024; footer 60 without variables; variables numbered 1..n without gaps;
at most 10 buttons, 2 URL, 1 phone number, 1 copy-code; button text 25; one variable, at the
end, in a URL button; parameter text without new lines, tabs or more than 4 spaces in a row
(Cloud API error 132018); session text 4096.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trato.content.findings import Finding, has_errors
from trato.core.errors import InvalidInput

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
LIMITS = {"header": 60, "body": 1024, "footer": 60, "button_text": 25, "buttons": 10,
          "url_buttons": 2, "phone_buttons": 1, "copy_code_buttons": 1, "text": 4096}
VARIABLE_RE = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_NAME_RE = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(_[A-Z]{2,4})?")
_PHONE_RE = re.compile(r"\+?[1-9]\d{6,14}")
_URL_END_RE = re.compile(r"\{\{\s*1\s*\}\}$")
_BAD_PARAM_RE = re.compile(r"[\n\t]| {5,}")


def _component(definition: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for component in definition.get("components") or []:
        if str(component.get("type", "")).upper() == kind:
            return component
    return None


def _buttons(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    component = _component(definition, "BUTTONS")
    return list(component.get("buttons") or []) if component else []


def _variables(text: str) -> list[int]:
    return [int(n) for n in VARIABLE_RE.findall(text or "")]


def _takes_value(button: Mapping[str, Any]) -> bool:
    kind = str(button.get("type", "")).upper()
    return kind in ("COPY_CODE", "OTP") or (kind == "URL" and bool(_variables(button.get("url", ""))))


def _error(code: str, message: str, **detail: Any) -> Finding:
    return Finding(f"whatsapp.{code}", "error", message, detail)


def _check_definition(definition: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if not _NAME_RE.fullmatch(str(definition.get("name", ""))):
        out.append(_error("name", "A template name is lower-case letters, digits and '_'."))
    if str(definition.get("category", "")).upper() not in CATEGORIES:
        out.append(_error("category", "The category is MARKETING, UTILITY or AUTHENTICATION.",
                          category=definition.get("category")))
    if not _LANGUAGE_RE.fullmatch(str(definition.get("language", ""))):
        out.append(_error("language", "The language is a Meta code such as 'es' or 'en_US'.",
                          language=definition.get("language")))
    body = _component(definition, "BODY")
    if body is None or not str(body.get("text", "")).strip():
        out.append(_error("body_missing", "A template needs a body text."))
    for kind in ("HEADER", "BODY", "FOOTER"):
        component = _component(definition, kind)
        if component is None or (kind == "HEADER" and str(component.get("format", "TEXT")).upper() != "TEXT"):
            continue
        text, key = str(component.get("text", "")), kind.lower()
        numbers = _variables(text)
        if len(text) > LIMITS[key]:
            out.append(_error(f"{key}_too_long", f"The {key} has {len(text)} characters; Meta "
                              f"allows {LIMITS[key]}.", length=len(text), limit=LIMITS[key]))
        if numbers and sorted(set(numbers)) != list(range(1, max(numbers) + 1)):
            out.append(_error("variables_not_sequential", f"The {key}'s variables must be "
                              "numbered {{1}} to {{n}} without gaps.", component=key,
                              variables=sorted(set(numbers))))
        if kind == "HEADER" and len(numbers) > 1:
            out.append(_error("header_variables", "A header takes at most one variable."))
        if kind == "FOOTER" and numbers:
            out.append(_error("footer_variables", "A footer cannot have variables."))
        if kind == "BODY" and numbers and (VARIABLE_RE.match(text.strip()) or
                                           re.search(r"\{\{\s*\d+\s*\}\}$", text.strip())):
            out.append(Finding("whatsapp.variable_at_edge", "warning", "Meta often rejects a "
                               "body that starts or ends with a variable.", {}))
    out.extend(_check_buttons(_buttons(definition)))
    return out


def _check_buttons(buttons: list[Mapping[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    kinds = [str(b.get("type", "")).upper() for b in buttons]
    for kind, key in (("URL", "url_buttons"), ("PHONE_NUMBER", "phone_buttons"),
                      ("COPY_CODE", "copy_code_buttons")):
        if kinds.count(kind) > LIMITS[key]:
            out.append(_error("too_many_buttons", f"At most {LIMITS[key]} {kind} button(s).",
                              type=kind, count=kinds.count(kind), limit=LIMITS[key]))
    if len(buttons) > LIMITS["buttons"]:
        out.append(_error("too_many_buttons", f"At most {LIMITS['buttons']} buttons.",
                          count=len(buttons), limit=LIMITS["buttons"]))
    for index, button in enumerate(buttons):
        if len(str(button.get("text", ""))) > LIMITS["button_text"]:
            out.append(_error("button_text_too_long", f"Button {index + 1}'s text is longer than "
                              f"{LIMITS['button_text']} characters.", index=index))
        url = str(button.get("url", "")).strip()
        numbers = _variables(url)
        if kinds[index] == "URL" and numbers and (numbers != [1] or not _URL_END_RE.search(url)):
            out.append(_error("url_variable", "A URL button takes one variable {{1}}, at the end "
                              "of the URL.", index=index, url=url))
    return out


def _check_values(name: str, values: list[str], expected: int, limit_key: str | None,
                  text: str) -> list[Finding]:
    out: list[Finding] = []
    if len(values) < expected:
        out.append(_error("missing_parameter", f"The {name} needs {expected} value(s), got "
                          f"{len(values)}.", component=name,
                          missing=[f"{{{{{n}}}}}" for n in range(len(values) + 1, expected + 1)]))
    elif len(values) > expected:
        out.append(_error("extra_parameter", f"The {name} takes {expected} value(s), got "
                          f"{len(values)}.", component=name, expected=expected, got=len(values)))
    for number, value in enumerate(values, start=1):
        if not str(value).strip():
            out.append(_error("empty_parameter", f"Value {{{{{number}}}}} of the {name} is empty.",
                              component=name, variable=number))
        elif _BAD_PARAM_RE.search(str(value)):
            out.append(_error("parameter_whitespace", f"Value {{{{{number}}}}} of the {name} has a "
                              "new line, a tab or more than 4 spaces in a row.", component=name,
                              variable=number))
    if limit_key and len(values) == expected:
        filled = _fill(text, values)
        if len(filled) > LIMITS[limit_key]:
            out.append(_error(f"filled_{limit_key}_too_long", f"With the values the {name} has "
                              f"{len(filled)} characters; Meta allows {LIMITS[limit_key]}.",
                              length=len(filled), limit=LIMITS[limit_key]))
    return out


def _fill(text: str, values: list[str]) -> str:
    return VARIABLE_RE.sub(lambda m: str(values[int(m.group(1)) - 1])
                           if int(m.group(1)) <= len(values) else m.group(0), text)


def _button_values(params: Mapping[str, Any]) -> dict[int, str]:
    return {int(k): str(v) for k, v in (params.get("buttons") or {}).items()}


def check_template(definition: Mapping[str, Any],
                   params: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings on a template definition and, when given, the values for its variables."""
    out = _check_definition(definition)
    if params is None:
        return out
    header = _component(definition, "HEADER")
    header_format = str(header.get("format", "TEXT")).upper() if header else None
    if header_format == "TEXT":
        text = str(header.get("text", ""))
        out += _check_values("header", list(params.get("header") or []),
                             len(set(_variables(text))), "header", text)
    elif header_format in ("IMAGE", "VIDEO", "DOCUMENT"):
        link = str((params.get("header") or {}).get("link", ""))
        if not link.startswith("https://"):
            out.append(_error("header_media", f"A {header_format.lower()} header needs an https "
                              "link to the file.", format=header_format))
    body = _component(definition, "BODY")
    if body is not None:
        text = str(body.get("text", ""))
        out += _check_values("body", list(params.get("body") or []),
                             len(set(_variables(text))), "body", text)
    values = _button_values(params)
    buttons = _buttons(definition)
    for index, button in enumerate(buttons):
        if _takes_value(button) and not values.get(index, "").strip():
            out.append(_error("missing_parameter", f"Button {index + 1} needs a value.",
                              component="buttons", index=index))
    for index in sorted(values):
        kind = str(buttons[index].get("type", "")).upper() if index < len(buttons) else None
        if kind is None or not (_takes_value(buttons[index]) or kind == "QUICK_REPLY"):
            out.append(_error("extra_parameter", f"Button {index + 1} takes no value.",
                              component="buttons", index=index))
    return out


def _recipient(to: str) -> str:
    number = re.sub(r"[\s().-]", "", to)
    if not _PHONE_RE.fullmatch(number):
        raise InvalidInput("The recipient must be a phone number in international form.",
                           code="whatsapp.recipient", details={"to": to})
    return number.lstrip("+")


def template_message(to: str, definition: Mapping[str, Any],
                     params: Mapping[str, Any]) -> dict[str, Any]:
    """The Cloud API request body that sends ``definition`` filled with ``params`` to ``to``."""
    findings = check_template(definition, params)
    if has_errors(findings):
        raise InvalidInput("The WhatsApp template and its values do not fit together.",
                           code="whatsapp.invalid_template",
                           details=[f.to_dict() for f in findings if f.severity == "error"])
    components: list[dict[str, Any]] = []
    header = _component(definition, "HEADER")
    if header is not None:
        header_format = str(header.get("format", "TEXT")).upper()
        if header_format == "TEXT" and params.get("header"):
            components.append({"type": "header", "parameters": [
                {"type": "text", "text": str(v)} for v in params["header"]]})
        elif header_format in ("IMAGE", "VIDEO", "DOCUMENT"):
            media = {k: v for k, v in params["header"].items() if k in ("link", "filename")}
            if header_format != "DOCUMENT":
                media.pop("filename", None)
            kind = header_format.lower()
            components.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
    if params.get("body"):
        components.append({"type": "body", "parameters": [
            {"type": "text", "text": str(v)} for v in params["body"]]})
    values = _button_values(params)
    for index, button in enumerate(_buttons(definition)):
        if index not in values:
            continue
        kind = str(button.get("type", "")).upper()
        if kind == "QUICK_REPLY":
            sub_type, parameter = "quick_reply", {"type": "payload", "payload": values[index]}
        elif kind == "COPY_CODE":
            sub_type, parameter = "copy_code", {"type": "coupon_code",
                                                "coupon_code": values[index]}
        else:  # URL, and OTP buttons, whose code Meta takes as a url parameter
            sub_type, parameter = "url", {"type": "text", "text": values[index]}
        components.append({"type": "button", "sub_type": sub_type, "index": str(index),
                           "parameters": [parameter]})
    template: dict[str, Any] = {"name": definition["name"],
                                "language": {"code": definition["language"]}}
    if components:
        template["components"] = components
    return {"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": _recipient(to), "type": "template", "template": template}


def text_message(to: str, body: str, *, preview_url: bool = False) -> dict[str, Any]:
    """The Cloud API request body of a free-form text message inside the service window."""
    if not body.strip():
        raise InvalidInput("A WhatsApp message needs text.", code="whatsapp.empty_text")
    if len(body) > LIMITS["text"]:
        raise InvalidInput(f"A WhatsApp text has at most {LIMITS['text']} characters.",
                           code="whatsapp.text_too_long", details={"length": len(body)})
    return {"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": _recipient(to), "type": "text",
            "text": {"preview_url": preview_url, "body": body}}


def preview(definition: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """What the customer sees: texts with values filled in and the buttons' labels."""
    header = _component(definition, "HEADER")
    body = _component(definition, "BODY")
    footer = _component(definition, "FOOTER")
    values = _button_values(params)
    shown_header: dict[str, Any] | None = None
    if header is not None:
        header_format = str(header.get("format", "TEXT")).upper()
        shown_header = ({"format": "TEXT", "text": _fill(str(header.get("text", "")),
                                                         list(params.get("header") or []))}
                        if header_format == "TEXT" else
                        {"format": header_format, **dict(params.get("header") or {})})
    buttons = []
    for index, button in enumerate(_buttons(definition)):
        shown = {"type": str(button.get("type", "")).upper(), "text": button.get("text", "")}
        if shown["type"] == "URL":
            shown["url"] = _fill(str(button.get("url", "")), [values.get(index, "")])
        elif shown["type"] == "PHONE_NUMBER":
            shown["phone_number"] = button.get("phone_number", "")
        buttons.append(shown)
    return {
        "header": shown_header,
        "body": _fill(str(body.get("text", "")), list(params.get("body") or [])) if body else "",
        "footer": str(footer.get("text", "")) if footer else None,
        "buttons": buttons,
    }
