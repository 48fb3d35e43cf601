"""Voice calls: SSML scripts checked before they reach a text-to-speech provider.

Interface (stable): ``check_ssml(text) -> list[Finding]`` and ``spoken_text(text) -> str``
(what the voice says, for the preview; raises ``InvalidInput`` code ``voice.ssml_invalid``).

The script must be well-formed XML whose root is ``<speak>`` (with or without the SSML
namespace). A DOCTYPE or entity declaration is refused outright, before anything is
expanded: that is how XML bombs and external entities get in, and SSML needs neither. Codes:
``voice.ssml_invalid`` and ``voice.ssml_doctype`` and ``voice.ssml_root`` (errors),
``voice.ssml_audio`` (an ``<audio>`` that is not https; error), ``voice.ssml_unknown``
(elements outside SSML 1.1 and the common provider extensions; warning), ``voice.ssml_break``
(a pause that is not "300ms"/"1.5s" or is over 10 s; warning), ``voice.ssml_long`` (over
6,000 characters: providers refuse longer requests; error).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat

from trato.content.findings import Finding
from trato.core.errors import InvalidInput

MAX_SSML_CHARS = 6000
MAX_BREAK_SECONDS = 10.0
ELEMENTS = frozenset({
    "speak", "p", "s", "break", "emphasis", "prosody", "say-as", "phoneme", "sub", "voice",
    "audio", "mark", "lang", "lexicon", "lookup", "meta", "metadata", "desc", "token", "w",
    "par", "seq", "media",  # Google
    "amazon:effect", "amazon:domain", "amazon:emotion", "amazon:auto-breaths",  # Amazon Polly
})
_BREAK_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s)")


class _Refused(Exception):
    pass


def _parse(text: str) -> ET.Element:
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")

    def refuse(*_: object) -> None:
        raise _Refused

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = lambda name, attrs: builder.start(_local(name), {
        _local(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda name: builder.end(_local(name))
    parser.CharacterDataHandler = builder.data
    parser.Parse(text.encode(), True)
    return builder.close()


def _local(name: str) -> str:
    namespace, _, local = name.rpartition(" ")
    return f"amazon:{local}" if namespace.endswith("amazon.com/ssml") else local


def _read(text: str) -> tuple[ET.Element | None, Finding | None]:
    try:
        return _parse(text), None
    except _Refused:
        return None, Finding("voice.ssml_doctype", "error", "SSML may not declare a DOCTYPE or "
                             "entities.", {})
    except expat.ExpatError as exc:
        return None, Finding("voice.ssml_invalid", "error", f"The SSML is not well-formed XML: "
                             f"{expat.ErrorString(exc.code)}.",
                             {"line": exc.lineno, "column": exc.offset})


def check_ssml(text: str) -> list[Finding]:
    """Findings on an SSML script: well-formed, <speak> root, known elements, sane pauses."""
    findings: list[Finding] = []
    if len(text) > MAX_SSML_CHARS:
        findings.append(Finding("voice.ssml_long", "error", f"The script has {len(text)} "
                                f"characters; providers accept {MAX_SSML_CHARS}.",
                                {"length": len(text), "limit": MAX_SSML_CHARS}))
    root, problem = _read(text)
    if root is None:
        return [*findings, problem] if problem else findings
    if root.tag != "speak":
        findings.append(Finding("voice.ssml_root", "error", "The SSML root element must be "
                                "<speak>.", {"root": root.tag}))
    unknown = sorted({e.tag for e in root.iter() if e.tag not in ELEMENTS})
    if unknown:
        findings.append(Finding("voice.ssml_unknown", "warning", "Elements a voice provider "
                                "may not know: " + ", ".join(unknown) + ".", {"elements": unknown}))
    for element in root.iter("break"):
        time = element.get("time")
        match = _BREAK_RE.fullmatch(time or "") if time is not None else None
        if time is not None and (not match or float(match.group(1)) /
                                 (1000 if match.group(2) == "ms" else 1) > MAX_BREAK_SECONDS):
            findings.append(Finding("voice.ssml_break", "warning", f"A pause of {time!r}: write "
                                    "it as '500ms' or '1.5s', at most 10 s.", {"time": time}))
    for element in root.iter("audio"):
        if not (element.get("src") or "").startswith("https://"):
            findings.append(Finding("voice.ssml_audio", "error", "An <audio> clip must come "
                                    "from an https URL.", {"src": element.get("src")}))
    return findings


def spoken_text(text: str) -> str:
    """The words the voice says (``<sub alias>`` read as its alias), for the preview."""
    root, problem = _read(text)
    if root is None:
        raise InvalidInput(problem.message if problem else "Invalid SSML.",
                           code=problem.code if problem else "voice.ssml_invalid")

    def words(element: ET.Element) -> str:
        inner = element.get("alias") if element.tag == "sub" and element.get("alias") else \
            (element.text or "") + "".join(words(child) + (child.tail or "") for child in element)
        return f" {inner} " if element.tag in ("p", "s", "break") else inner

    return re.sub(r"\s+", " ", words(root)).strip()
