"""Which providers send each channel, in failover order.

Adapters are classes found through the ``trato.channels`` entry points (the built-in ones are
declared there too, and also known without installing the package's metadata). A *provider* is a
configured instance of an adapter, with a name (``twilio-es``) that its callbacks arrive under
(``/hooks/{name}/…``). Providers come from, in this order within a channel:

1. an adapter a test or the benchmark installed with :func:`use` (first, alone on its slot);
2. the settings: ``TRATO_EMAIL_URL``, ``TRATO_SMS_URL``, ``TRATO_WHATSAPP_URL``, ``TRATO_PUSH_URL``,
   ``TRATO_VOICE_URL``, ``TRATO_LETTER_URL`` (that channel) and ``TRATO_WEBHOOK_URL`` (every
   channel its adapter sends), each one URL or several separated by spaces or commas, tried in
   the order written; the URL's scheme picks the adapter (its ``url_schemes``) and an optional
   ``#name`` names the provider (else the adapter's name, ``-2``… when taken). The same URL in
   two settings is one provider serving both channels. Older settings still work for a channel
   without a URL: ``TRATO_CHANNEL_PROVIDERS`` (``email=smtp,sms=sandbox``) and, for e-mail,
   ``TRATO_SMTP_HOST`` (the ``TRATO_SMTP_*`` variables);
3. the providers stored through the API and CLI (``delivery.providers``), enabled ones, by
   priority then name (a disabled one sends nothing but still answers its callbacks).

Settings come first because they are the deployment's own declaration, reviewed with its code;
providers added in the console are the additions (a backup account, a second country). A channel
that nothing configures is sent by the sandbox, which keeps what it "sends" (the embedded demo).

Stored providers are read again when their change stamp moves (one indexed read per look-up, in
the caller's transaction when it passes its session), so a provider added or disabled in one
process is used by every worker at its next message.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.core.channels import CHANNELS
from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import ChannelAdapter
from trato.delivery.channels.email import SmtpEmail
from trato.delivery.channels.fcm import Fcm
from trato.delivery.channels.infobip import InfobipSms
from trato.delivery.channels.letter import PrintHouse
from trato.delivery.channels.sandbox import Sandbox
from trato.delivery.channels.twilio import TwilioSms, TwilioVoice
from trato.delivery.channels.webhook import Webhook
from trato.delivery.channels.webpush import WebPush
from trato.delivery.channels.whatsapp import WhatsAppCloud

log = structlog.get_logger("trato.delivery")
GROUP = "trato.channels"
BUILT_IN: dict[str, type[ChannelAdapter]] = {"smtp": SmtpEmail, "sandbox": Sandbox}
BUILT_IN["whatsapp"] = WhatsAppCloud
BUILT_IN.update({"webpush": WebPush, "fcm": Fcm})
BUILT_IN.update({"twilio": TwilioSms, "twilio_voice": TwilioVoice, "infobip": InfobipSms})
BUILT_IN["webhook"] = Webhook
BUILT_IN["printhouse"] = PrintHouse

# Setting → the channel its providers send (None: every channel their adapter sends).
URL_SETTINGS: dict[str, str | None] = {
    "TRATO_EMAIL_URL": "email", "TRATO_SMS_URL": "sms", "TRATO_WHATSAPP_URL": "whatsapp",
    "TRATO_PUSH_URL": "push", "TRATO_VOICE_URL": "voice", "TRATO_LETTER_URL": "letter", "TRATO_WEBHOOK_URL": None,
}
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_SPLIT = re.compile(r"[\s,]+")


@dataclass
class Configured:
    """A provider: its adapter, and where it was configured (``settings``, ``database``,
    ``default`` or ``test``), with the overrides it carries."""

    adapter: ChannelAdapter
    origin: str
    channels: tuple[str, ...]
    setting: str | None = None
    priority: int = 0
    max_per_second: float | None = None
    enabled: bool = True

    @property
    def name(self) -> str:
        return self.adapter.instance

    @property
    def rate(self) -> float | None:
        """Messages a second this provider may be sent, if limited: its own override, else the adapter's."""
        return self.max_per_second if self.max_per_second is not None else self.adapter.limits.max_per_second


@dataclass
class _Built:
    key: Any = None
    by_channel: dict[str, list[Configured]] = field(default_factory=dict)
    by_name: dict[str, Configured] = field(default_factory=dict)
    # Stored providers that cannot be built (adapter gone, credentials unreadable), by channel.
    broken: dict[str, list[ConfigurationError]] = field(default_factory=dict)


_lock = threading.RLock()
_tests: dict[str, ChannelAdapter] = {}
_env = _Built()
_stored = _Built()
_default: Sandbox | None = None


# -- adapter classes ------------------------------------------------------------------------------


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


def adapter_for_scheme(scheme: str) -> type[ChannelAdapter] | None:
    """The adapter class whose one-line URLs start with ``scheme://`` (built-ins win a clash)."""
    for adapter in adapter_classes().values():
        if scheme.lower() in adapter.url_schemes:
            return adapter
    return None


def settings_from_url(url: str) -> tuple[type[ChannelAdapter], BaseModel, str | None]:
    """(adapter class, its settings, the ``#name`` if any) from one provider URL; ValueError says
    what is wrong in words a person can act on (never quoting the URL, which may hold a password)."""
    parts = urlsplit(url.strip())
    if not parts.scheme:
        raise ValueError("a provider URL starts with its scheme, e.g. smtp:// or sandbox://")
    adapter = adapter_for_scheme(parts.scheme)
    if adapter is None:
        known = sorted({s for a in adapter_classes().values() for s in a.url_schemes})
        raise ValueError(f"no adapter understands {parts.scheme}:// (known: {', '.join(known)})")
    name = parts.fragment or None
    if name is not None and not NAME.match(name):
        raise ValueError(f"#{name} is not a provider name: lower-case letters, digits and dashes, 40 at most")
    bare = url.strip().split("#", 1)[0]
    try:
        settings = adapter.settings_from_url(bare)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ValueError(f"{adapter.name}: {where}: {first['msg']}") from None
    except ConfigurationError as exc:
        raise ValueError(exc.message) from None
    return adapter, settings, name


# -- from the settings ------------------------------------------------------------------------------


def _env_key() -> tuple[Any, ...]:
    from trato.core.settings import get_settings

    settings = get_settings()
    urls = tuple(getattr(settings, s.removeprefix("TRATO_").lower()) for s in URL_SETTINGS)
    legacy = tuple((k, os.environ[k]) for k in sorted(os.environ) if k.startswith("TRATO_SMTP_"))
    return urls, legacy, os.environ.get("TRATO_CHANNEL_PROVIDERS", "")


def _from_settings(key: tuple[Any, ...]) -> _Built:
    urls = key[0]
    built = _Built(key=key)
    by_url: dict[str, Configured] = {}
    for setting, text in zip(URL_SETTINGS, urls, strict=True):
        for url in filter(None, _SPLIT.split(text or "")):
            try:
                cls, settings, name = settings_from_url(url)
            except ValueError as exc:
                raise ConfigurationError(setting, str(exc)) from None
            channel = URL_SETTINGS[setting]
            if channel is not None and channel not in cls.channels:
                raise ConfigurationError(setting, f"the {cls.name} adapter does not send {channel} "
                                                  f"(it sends {', '.join(cls.channels)})")
            configured = by_url.get(url)
            if configured is None:
                name = name or _free_name(cls.name, built.by_name)
                if name in built.by_name:
                    raise ConfigurationError(setting, f"two different providers are called {name}")
                configured = Configured(cls(settings, instance=name), "settings", (), setting=setting)
                by_url[url] = built.by_name[name] = configured
            for served in (channel,) if channel else cls.channels:
                if served not in configured.channels:
                    configured.channels += (served,)
                built.by_channel.setdefault(served, []).append(configured)
    _legacy(built)
    return built


def _free_name(base: str, taken: dict[str, Configured]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _legacy_choices() -> dict[str, str]:
    chosen: dict[str, str] = {}
    if os.environ.get("TRATO_SMTP_HOST"):
        chosen["email"] = "smtp"
    text = os.environ.get("TRATO_CHANNEL_PROVIDERS", "")
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, _, name = item.partition("=")
        if channel.strip() not in CHANNELS or not name.strip():
            raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"{item!r} is not channel=adapter")
        chosen[channel.strip()] = name.strip()
    return chosen


def configured_providers() -> dict[str, str]:
    """Channel → adapter name from the older settings (``TRATO_CHANNEL_PROVIDERS``, ``TRATO_SMTP_HOST``),
    the sandbox for the channels they do not name."""
    return {channel: "sandbox" for channel in CHANNELS} | _legacy_choices()


def _legacy(built: _Built) -> None:
    classes = adapter_classes()
    for channel, name in _legacy_choices().items():
        if channel in built.by_channel:  # the channel's URL setting wins
            continue
        if name not in classes:
            raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"no channel adapter is called {name!r}")
        if channel not in classes[name].channels:
            raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"{name} does not send {channel}")
        configured = built.by_name.get(name)
        if configured is None:  # one instance per adapter, e.g. one sandbox for every channel
            try:
                adapter = classes[name](instance=name)
            except ValidationError:
                raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", f"the {name} adapter needs settings: write it as "
                                                                    f"a URL in TRATO_{channel.upper()}_URL") from None
            configured = Configured(adapter, "settings", (), setting="TRATO_CHANNEL_PROVIDERS")
            built.by_name[name] = configured
        configured.channels += (channel,)
        built.by_channel.setdefault(channel, []).append(configured)


def _settings_providers() -> _Built:
    global _env
    key = _env_key()
    with _lock:
        if _env.key != key:
            _env = _from_settings(key)
        return _env


def check_configuration() -> None:
    """Read every provider setting now: a bad URL stops start-up naming its setting."""
    _settings_providers()


# -- stored through the API -------------------------------------------------------------------------


def _stored_providers(session: Session | None) -> _Built:
    global _stored
    from trato.delivery.models import ProviderStamp

    if session is None:
        from trato.core.db import new_session

        with new_session(readonly=True) as own:
            return _stored_providers(own)
    stamp = session.scalar(select(ProviderStamp.stamp).where(ProviderStamp.id == 1))
    with _lock:
        if stamp is None:  # nothing was ever stored (or the tables were emptied)
            if _stored.key is not None:
                _stored = _Built()
            return _stored
        if _stored.key == stamp:
            return _stored
    from trato.delivery import providers

    rows = providers.stored_providers(session)
    with _lock:
        previous = _stored.by_name
        built = _Built(key=stamp)
        for row in rows:
            kept = previous.get(row.name)
            # An unchanged provider keeps its adapter (its connections, a sandbox's records).
            if kept is not None and kept.setting == row.version:
                adapter = kept.adapter
            else:
                try:
                    adapter = providers.build_adapter(row)
                except ConfigurationError as exc:  # one broken provider does not stop the others
                    log.error("a stored provider cannot be used", provider=row.name, error=exc.message)
                    for channel in row.channels if row.enabled else ():
                        built.broken.setdefault(channel, []).append(exc)
                    continue
            configured = Configured(adapter, "database", tuple(row.channels), setting=row.version,
                                    priority=row.priority, max_per_second=row.max_per_second, enabled=row.enabled)
            built.by_name[row.name] = configured  # a disabled one still verifies its callbacks
            for channel in row.channels if row.enabled else ():
                built.by_channel.setdefault(channel, []).append(configured)
        _stored = built
        return _stored


# -- looking up -------------------------------------------------------------------------------------


def _default_sandbox() -> Sandbox:
    global _default
    with _lock:
        if _default is None:
            _default = Sandbox(instance="sandbox")
        return _default


def chain(channel: str, *, session: Session | None = None) -> list[Configured]:
    """The providers of ``channel`` in failover order (see the module's docstring)."""
    found: list[Configured] = []
    test = _tests.get(channel)
    if test is not None:
        found.append(Configured(test, "test", (channel,)))
    found.extend(_settings_providers().by_channel.get(channel, ()))
    stored = _stored_providers(session)
    found.extend(stored.by_channel.get(channel, ()))
    if not found and stored.broken.get(channel):
        # Configured, but unusable: never the sandbox instead (it would swallow real messages).
        raise stored.broken[channel][0]
    if not found:
        found.append(Configured(_default_sandbox(), "default", CHANNELS))
    unique: dict[int, Configured] = {}
    for configured in found:
        unique.setdefault(id(configured.adapter), configured)
    return list(unique.values())


def adapter_for(channel: str, *, session: Session | None = None) -> ChannelAdapter:
    """The provider that sends ``channel`` now: the first whose circuit is not open."""
    from trato.delivery.resilience import health

    providers = chain(channel, session=session)
    for configured in providers:
        if not health().is_open(configured.name):
            return configured.adapter
    return providers[0].adapter


def settings_providers() -> list[Configured]:
    """The providers written in the settings, in the order written."""
    return list(_settings_providers().by_name.values())


def settings_providers_by_name() -> dict[str, Configured]:
    return dict(_settings_providers().by_name)


def settings_names() -> set[str]:
    """Names taken by providers written in the settings (a stored provider cannot take them)."""
    return set(_settings_providers().by_name)


def provider(instance: str, *, session: Session | None = None) -> ChannelAdapter:
    """The configured provider called ``instance``, e.g. to verify a callback to ``/hooks/{instance}/…``
    with that provider's own secret."""
    from trato.delivery.errors import ProviderNotFound

    with _lock:
        for adapter in _tests.values():
            if adapter.instance == instance:
                return adapter
    configured = _settings_providers().by_name.get(instance) or _stored_providers(session).by_name.get(instance)
    if configured is not None:
        return configured.adapter
    if instance == "sandbox":  # the one that sends the channels nothing configures
        return _default_sandbox()
    raise ProviderNotFound(f"no provider called {instance!r} is configured", details={"provider": instance})


def use(channel: str, adapter: ChannelAdapter | None) -> ChannelAdapter | None:
    """Send ``channel`` through ``adapter`` first from now on (None: back to the configuration).

    Such an adapter stands outside the circuit breaker and rate limits: tests of the delivery flow
    see exactly what it answers. Returns the adapter it replaces, for tests and the benchmark to
    restore."""
    with _lock:
        previous = _tests.pop(channel, None)
        if adapter is not None:
            _tests[channel] = adapter
        return previous


def sandboxes(*, session: Session | None = None) -> list[Sandbox]:
    """Every sandbox this process sends through (the default one, configured ones, a test's), for the
    page that shows what they "sent"."""
    found: list[ChannelAdapter] = [*_tests.values()]
    found.extend(c.adapter for c in _settings_providers().by_name.values())
    found.extend(c.adapter for c in _stored_providers(session).by_name.values())
    found.append(_default_sandbox())
    unique: dict[int, Sandbox] = {}
    for adapter in found:
        if isinstance(adapter, Sandbox):
            unique.setdefault(id(adapter), adapter)
    return list(unique.values())


def forget() -> None:
    """Drop every provider built so far (tests; a process that changed its settings)."""
    global _env, _stored, _default
    with _lock:
        _env, _stored, _default = _Built(), _Built(), None
