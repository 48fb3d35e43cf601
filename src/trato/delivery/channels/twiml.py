"""A voice template's SSML turned into the TwiML that Twilio plays on a call.

Twilio reads SSML inside ``<Say>`` when the voice is an Amazon Polly or Google one, and only
these elements: break, emphasis, lang, p, phoneme, prosody, s, say-as, sub, w. The script is
parsed (never a DOCTYPE or an entity: SSML needs neither and that is how XML bombs get in),
those elements are written back with the attributes Twilio knows, every other element keeps
only its words (``<voice>``, ``<amazon:…>``, ``<token>``) or is dropped when it has none to say
(``<mark>``, ``<desc>``, ``<meta>``…), and an ``<audio>`` clip straight under ``<speak>`` becomes
a ``<Play>`` between two ``<Say>`` (deeper ones are spoken as their fallback text). Every text
and attribute is escaped again on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

XML_NS = "http://www.w3.org/XML/1998/namespace"
# Element → the attributes Twilio's <Say> accepts on it.
SAY_ELEMENTS: dict[str, tuple[str, ...]] = {
    "break": ("strength", "time"), "emphasis": ("level",), "lang": ("xml:lang",), "p": (),
    "phoneme": ("alphabet", "ph"),
    "prosody": ("volume", "rate", "pitch"), "s": (), "say-as": ("interpret-as", "format"), "sub": ("alias",),
    "w": ("role",),
}
SILENT = frozenset({"mark", "desc", "meta", "metadata", "lexicon", "lookup"})
MAX_TWIML_CHARS = 4000  # Twilio's limit on the Twiml parameter of a call


class InvalidScript(ValueError):
    """The SSML cannot be read (not XML, a DOCTYPE, nothing to say)."""


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = field(default_factory=list)


def _name(raw: str) -> str:
    namespace, _, local = raw.rpartition(" ")
    if namespace == XML_NS:
        return f"xml:{local}"
    return f"amazon:{local}" if namespace.endswith("amazon.com/ssml") else local


def parse(ssml: str) -> _Node:
    """The script as a tree; refuses DOCTYPEs and entities before anything is expanded."""
    root = _Node("#document", {})
    stack = [root]

    def refuse(*_: object) -> None:
        raise InvalidScript("SSML may not declare a DOCTYPE or entities")

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = _Node(_name(tag), {_name(k): v for k, v in attrs.items()})
        stack[-1].children.append(node)
        stack.append(node)

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _tag: stack.pop()
    parser.CharacterDataHandler = lambda text: stack[-1].children.append(text)
    try:
        parser.Parse(ssml.encode(), True)
    except expat.ExpatError as exc:
        raise InvalidScript(f"the SSML is not well-formed XML: {expat.ErrorString(exc.code)}") from None
    elements = [child for child in root.children if isinstance(child, _Node)]
    if len(elements) != 1 or elements[0].tag != "speak":
        raise InvalidScript("the SSML root element must be <speak>")
    return elements[0]


def _inner(node: _Node) -> str:
    out: list[str] = []
    for child in node.children:
        if isinstance(child, str):
            out.append(escape(child))
        elif child.tag in SILENT:
            continue
        elif child.tag in SAY_ELEMENTS:
            attrs = "".join(f" {name}={quoteattr(child.attrs[name])}" for name in SAY_ELEMENTS[child.tag]
                            if name in child.attrs)
            body = _inner(child)
            out.append(f"<{child.tag}{attrs}>{body}</{child.tag}>" if body else f"<{child.tag}{attrs}/>")
        else:  # voice, audio deeper down, provider extensions: their words only
            out.append(_inner(child))
    return "".join(out)


def language_of(ssml_root: _Node) -> str | None:
    return ssml_root.attrs.get("xml:lang")


def twiml(ssml: str, *, language: str, voice: str | None) -> str:
    """The call's TwiML: ``<Say>`` blocks in ``language`` with ``voice`` and ``<Play>`` clips."""
    root = parse(ssml)
    say_attrs = f" language={quoteattr(language)}" + (f" voice={quoteattr(voice)}" if voice else "")
    verbs: list[str] = []
    pending = _Node("speak", {})

    def flush() -> None:
        text = _inner(pending)
        if text.strip():
            verbs.append(f"<Say{say_attrs}>{text.strip()}</Say>")
        pending.children.clear()

    for child in root.children:
        if isinstance(child, _Node) and child.tag == "audio" and child.attrs.get("src", "").startswith("https://"):
            flush()
            verbs.append(f"<Play>{escape(child.attrs['src'])}</Play>")
        else:
            pending.children.append(child)
    flush()
    if not verbs:
        raise InvalidScript("the script has nothing to say")
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"
