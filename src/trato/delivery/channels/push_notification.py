"""The notification a push adapter sends, read from the push kit's rendered parts (``title``,
``body``, ``image``, ``deep_link``; see :mod:`trato.content.push`), and the one question every
push adapter asks before sending: which registered device the recipient names."""

from __future__ import annotations

from dataclasses import dataclass

from trato.delivery import push_devices
from trato.delivery.channels.base import OutgoingMessage, ProviderResult


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    image: str | None
    deep_link: str | None

    @classmethod
    def of(cls, message: OutgoingMessage) -> Notification:
        def part(name: str) -> str:
            value = message.parts.get(name, "")
            return (value.decode() if isinstance(value, bytes) else str(value)).strip()

        return cls(part("title"), part("body") or part("text"), part("image") or None, part("deep_link") or None)


def find_target(message: OutgoingMessage, *, platform: str,
                bare_tokens: bool) -> push_devices.PushTarget | ProviderResult:
    """The device ``message.recipient`` names, or the refusal to give when it cannot be sent to."""
    found = push_devices.target(message.recipient)
    if found is None:
        return ProviderResult.refused("the device's push registration was removed (expired or unregistered)",
                                      permanent=True)
    if found.platform is None and not bare_tokens:
        return ProviderResult.refused(f"{message.recipient[:12]}… is not a registered {platform} subscription",
                                      permanent=True)
    if found.platform is not None and found.platform != platform:
        return ProviderResult.refused(f"the device is registered for {found.platform}, not {platform}",
                                      permanent=True)
    return found
