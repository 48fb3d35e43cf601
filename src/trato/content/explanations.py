"""What the content domain's findings and rendering errors mean, in the console's language.

The channel kits (``email``, ``sms``, ``whatsapp``, ``push``, ``voice``, ``letter``) and the
templating sandbox speak English with a stable ``code``; the API keeps both. The console shows
the sentence for the code in the viewer's language, filled with the finding's own values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trato.core import i18n
from trato.core.i18n import N_

EXPLANATIONS = {
    "missing_variant": N_("There is no text for this channel."),
    "missing_language": N_("There is no text in this language."),
    "unknown_variable": N_("%(variable)s is not something a message can use."),
    "sample_missing_value": N_("A value the template uses is missing from the sample profile."),
    "malformed_link": N_("This is not a web address:"),
    "insecure_link": N_("This link is not HTTPS:"),
    "sms.segments": N_("%(segments)s segments (%(encoding)s), about %(cost)s per message."),
    "sms.no_opt_out": N_("A marketing SMS should say how to stop (e.g. 'BAJA al 217xx')."),
    "promotional_as_transactional": N_("'%(word)s' reads as promotion in a message sent without marketing consent or "
                                       "quiet hours."),
    "email.clipped": N_("The message weighs %(bytes)s bytes: Gmail clips messages over %(limit)s bytes and hides the "
                        "rest behind a link."),
    "email.missing_lang": N_("The <html> element has no lang: screen readers cannot pick the right voice."),
    "email.img_alt": N_("Images without alt text: screen readers cannot describe them."),
    "email.low_contrast": N_("Text %(color)s on %(background)s has contrast %(ratio)s:1; WCAG AA asks %(required)s:1."),
    "email.no_unsubscribe": N_("A marketing e-mail needs a link to unsubscribe."),
    "email.insecure_link": N_("Links or images use http:// instead of https://."),
    "email.unsafe_link": N_("A link runs code or embeds data; mail clients block it."),
    "email.empty_link": N_("Links lead nowhere (empty or '#')."),
    "email.mjml_invalid": N_("The e-mail's MJML is not valid."),
    "email.css_invalid": N_("The e-mail's CSS cannot be inlined."),
    "email.language": N_("The e-mail's language is a code such as 'es' or 'en-GB'."),
    "email.template_tag_lost": N_("A template tag is in a place the e-mail markup does not keep: move it inside an "
                                  "element such as mj-text or mj-raw."),
    "sms.ucs2_by_value": N_("A personalised value has characters outside GSM-7: the SMS goes as UCS-2, in more "
                            "segments."),
    "whatsapp.name": N_("A template name is lower-case letters, digits and '_'."),
    "whatsapp.category": N_("The WhatsApp template's category is MARKETING, UTILITY or AUTHENTICATION, and MARKETING "
                            "for marketing."),
    "whatsapp.language": N_("The language is a Meta code such as 'es' or 'en_US'."),
    "whatsapp.body_missing": N_("A template needs a body text."),
    "whatsapp.too_long": N_("The text has %(length)s characters; Meta allows %(limit)s."),
    "whatsapp.button_text_too_long": N_("A button's text is longer than Meta allows."),
    "whatsapp.variables_not_sequential": N_("Variables are numbered {{1}} to {{n}} without gaps."),
    "whatsapp.header_variables": N_("A header takes at most one variable."),
    "whatsapp.footer_variables": N_("A footer cannot have variables."),
    "whatsapp.variable_at_edge": N_("Meta often rejects a body that starts or ends with a variable."),
    "whatsapp.too_many_buttons": N_("More buttons than Meta allows (at most %(limit)s)."),
    "whatsapp.url_variable": N_("A URL button takes one variable {{1}}, at the end of the URL."),
    "whatsapp.missing_parameter": N_("A variable of the template has no value."),
    "whatsapp.extra_parameter": N_("A value was given for something that takes none."),
    "whatsapp.empty_parameter": N_("A variable's value is empty."),
    "whatsapp.parameter_whitespace": N_("A variable's value has a new line, a tab or more than 4 spaces in a row."),
    "whatsapp.header_media": N_("A media header needs an https link to the file."),
    "whatsapp.invalid_template": N_("The WhatsApp template is not valid."),
    "whatsapp.empty_text": N_("A WhatsApp message needs text."),
    "whatsapp.text_too_long": N_("The WhatsApp message is too long."),
    "whatsapp.recipient": N_("The recipient must be a phone number in international form."),
    "push.deep_link": N_("The deep link must be an https URL or an app link such as myapp://orders/1."),
    "push.deep_link_http": N_("The deep link uses http:// rather than https://."),
    "push.empty": N_("A push notification needs a title and a body."),
    "push.title_long": N_("The title has %(length)s characters; lock screens typically show %(limit)s."),
    "push.body_long": N_("The text has %(length)s characters; lock screens typically show %(limit)s."),
    "push.image_url": N_("The image must be an https URL."),
    "push.too_large": N_("The notification is %(bytes)s bytes; push services accept %(limit)s."),
    "voice.ssml_doctype": N_("SSML may not declare a DOCTYPE or entities."),
    "voice.ssml_invalid": N_("The SSML is not well-formed XML."),
    "voice.ssml_long": N_("The script has %(length)s characters; providers accept %(limit)s."),
    "voice.ssml_root": N_("The SSML root element must be <speak>."),
    "voice.ssml_unknown": N_("Elements a voice provider may not know: %(elements)s."),
    "voice.ssml_break": N_("A pause of %(time)s: write it as '500ms' or '1.5s', at most 10 s."),
    "voice.ssml_audio": N_("An <audio> clip must come from an https URL."),
    "letter.no_address": N_("A letter needs a postal address: this profile has none."),
    "letter.address_too_long": N_("The postal address has more lines than the envelope window takes."),
    "letter.address_overflow": N_("The postal address does not fit the envelope window."),
    "letter.pdf_variant": N_("Unknown PDF variant."),
    "template_syntax": N_("The template has a syntax error."),
    "template_undefined_variable": N_("The template uses a value this profile or message does not have."),
    "template_unsafe": N_("The template tries something templates may not do."),
    "template_include_not_allowed": N_("Templates include only content blocks."),
    "template_failed": N_("The template failed while rendering."),
    "unknown_block": N_("The template includes a content block that does not exist."),
    "block_too_deep": N_("Content blocks include each other too deeply."),
    "channel_not_covered": N_("This version has no text for this channel."),
}
# How the version history names what someone did to a version.
ACTIONS = {
    "submitted": N_("sent for review"),
    "approved": N_("approved it"),
    "changes_requested": N_("asked for changes"),
    "comment": N_("commented"),
}


def _message_id(code: str) -> str | None:
    if code in EXPLANATIONS:
        return EXPLANATIONS[code]
    if code.startswith("whatsapp.") and code.endswith("_too_long"):  # header_, body_, footer_, filled_...
        return EXPLANATIONS["whatsapp.too_long"]
    return None


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def explain(lang: str, code: str, detail: Mapping[str, Any] | None = None) -> str | None:
    """The sentence for ``code`` in ``lang`` with the values from ``detail``; None for an unknown
    code (the page then shows the English message)."""
    message_id = _message_id(code)
    if message_id is None:
        return None
    text = i18n.gettext(lang, message_id)
    if "%(" not in text:
        return text
    try:
        return text % {key: _shown(value) for key, value in (detail or {}).items()}
    except (KeyError, TypeError, ValueError):
        return None


def action(lang: str, name: str) -> str:
    """What was done to a version (``submitted``, ``approved``, ...) in ``lang``."""
    return i18n.gettext(lang, ACTIONS[name]) if name in ACTIONS else name
