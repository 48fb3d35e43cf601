"""Which adapter sends each channel. Adapters are classes found through the ``trato.channels``
entry points (the built-in ones are declared there too, and also known without installing the
package's metadata). The provider of each channel comes from ``TRATO_CHANNEL_PROVIDERS``
(``email=smtp,sms=sandbox``); without it e-mail goes over SMTP when ``TRATO_SMTP_HOST`` is set
and every other channel to the sandbox.
"""

from __future__ import annotations

import os
import threading
from importlib.metadata import entry_points

from trato.core.channels import CHANNELS
from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import ChannelAdapter
from trato.delivery.channels.email import SmtpEmail
from trato.delivery.channels.sandbox import Sandbox

GROUP = "trato.channels"
BUILT_IN: dict[str, type[ChannelAdapter]] = {"smtp": SmtpEmail, "sandbox": Sandbox}

_lock = threading.Lock()
_active: dict[str, ChannelAdapter] = {}


def adapter_classes() -> dict[str, type[ChannelAdapter]]:
    """Every adapter class by name: the built-ins, then those that installed packages declare."""
    found = dict(BUILT_IN)
    for point in entry_points(group=GROUP):
        if point.name in found:
            continue
        adapter = point.load()
        if not (isinstance(adapter, type) and issubclass(adapter, ChannelAdapter)):
            raise ConfigurationError(GROUP, f"entry point {point.name} is not a ChannelAdapter")
        found[point.name] = adapter
    return found


def configured_providers() -> dict[str, str]:
    """Channel → adapter name, from the environment (see the module's docstring)."""
    chosen = {channel: "sandbox" for channel in CHANNELS}
    if os.environ.get("TRATO_SMTP_HOST"):
        chosen["email"] = "smtp"
    text = os.environ.get("TRATO_CHANNEL_PROVIDERS", "")
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, _, name = item.partition("=")
        if channel.strip() not in CHANNELS or not name.strip():
            raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"{item!r} is not channel=adapter")
        chosen[channel.strip()] = name.strip()
    return chosen


def adapter_for(channel: str) -> ChannelAdapter:
    """The adapter that sends ``channel`` in this process (made once, then shared)."""
    with _lock:
        adapter = _active.get(channel)
        if adapter is not None:
            return adapter
        name = configured_providers()[channel]
        classes = adapter_classes()
        if name not in classes:
            raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"no channel adapter is called {name!r}")
        if channel not in classes[name].channels:
            raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"{name} does not send {channel}")
        # One sandbox serves every channel, so what it recorded can be browsed in one place.
        shared = next((a for a in _active.values() if type(a) is classes[name]), None)
        adapter = shared or classes[name]()
        _active[channel] = adapter
        return adapter


def provider(instance: str) -> ChannelAdapter:
    """The configured provider called ``instance`` (its adapter's name unless configured otherwise),
    e.g. to verify a callback to ``/hooks/{instance}/…`` with that provider's own secret."""
    from trato.delivery.errors import ProviderNotFound

    with _lock:
        for adapter in _active.values():
            if adapter.instance == instance:
                return adapter
    for channel, name in configured_providers().items():
        if name == instance:
            return adapter_for(channel)
    raise ProviderNotFound(f"no provider called {instance!r} is configured", details={"provider": instance})


def use(channel: str, adapter: ChannelAdapter | None) -> ChannelAdapter | None:
    """Send ``channel`` through ``adapter`` from now on (None: back to the configuration).

    Returns the adapter it replaces, for tests and the benchmark to restore."""
    with _lock:
        previous = _active.pop(channel, None)
        if adapter is not None:
            _active[channel] = adapter
        return previous
