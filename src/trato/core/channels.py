"""The channels trato speaks on, shared by every domain (policy, content, archive, delivery).

One vocabulary so a consent, a template variant, an archived copy and a delivery all name a
channel the same way.
"""

from __future__ import annotations

from typing import Final, Literal

from trato.core.i18n import N_

Channel = Literal["email", "sms", "whatsapp", "push", "voice", "letter", "web", "webhook"]

CHANNELS: Final[tuple[str, ...]] = ("email", "sms", "whatsapp", "push", "voice", "letter", "web", "webhook")
"""Every channel, in the order pages list them. ``web`` is the web / in-app channel; ``webhook`` is a
signed JSON POST to a company's own system (its endpoint reaches every customer)."""

CHANNEL_LABELS: Final[dict[str, str]] = {
    "email": N_("E-mail"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp"), "push": N_("Push"), "voice": N_("Voice"),
    "letter": N_("Letter"), "web": N_("Web / in-app"), "webhook": N_("Webhook"),
}
"""What the console calls each channel (catalogue ids: translate where shown)."""

PHONE_CHANNELS: Final[frozenset[str]] = frozenset({"sms", "whatsapp", "voice"})
"""Channels that reach a customer at a phone number (identity kind ``phone``)."""


ADDRESS_KIND: Final[dict[str, str]] = {
    "email": "email", "sms": "phone", "whatsapp": "phone", "voice": "phone", "push": "device_token",
}
"""The identity kind whose value is a channel's address (``letter``, ``web`` and ``webhook`` have none)."""

OPTIONAL_ADDRESS_KIND: Final[dict[str, str]] = {"webhook": "webhook"}
"""Channels that reach everyone without an address of the customer's own, but use one when the
customer has it (a ``webhook`` identity is a customer's own URL, used when the provider allows)."""


def is_channel(name: str) -> bool:
    return name in CHANNELS
