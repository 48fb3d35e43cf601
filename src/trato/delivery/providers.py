"""Providers configured through the API and CLI: a name, an adapter, the channels it sends, its
priority among them, whether it is enabled, its settings (validated by the adapter's settings
model on save, every secret sealed at rest, see core.sealing) and an optional rate limit.

Secrets never leave this module in clear except towards the adapter: reads show them as
``••••`` and their last four characters at most, audit rows name the fields that changed, never
their values. Every change gives the providers a new stamp in the same transaction, so every
process's registry rebuilds its providers at its next look-up after the commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.channels import CHANNELS
from trato.core.clock import iso, utcnow
from trato.core.db import insert_for
from trato.core.errors import ConfigurationError, TratoError
from trato.core.sealing import masked, seal, unseal
from trato.delivery.channels import registry
from trato.delivery.channels.base import ChannelAdapter, CheckResult, explicit_settings
from trato.delivery.errors import InvalidProvider, ProviderExists, ProviderNotFound, ProviderReadOnly
from trato.delivery.models import Provider, ProviderStamp
from trato.delivery.resilience import health

log = structlog.get_logger("trato.delivery")
SEALED = "$sealed"
MASK = "••••"


@dataclass(frozen=True)
class StoredProvider:
    """A stored provider as the registry builds it (settings still sealed)."""

    name: str
    adapter: str
    channels: list[str]
    priority: int
    max_per_second: float | None
    settings: dict[str, Any]
    version: str  # changes whenever the row does: the registry keeps an unchanged provider's adapter
    enabled: bool = True


@dataclass(frozen=True)
class ProviderView:
    """A provider as pages and the API show it: secrets masked, its circuit's state."""

    name: str
    adapter: str
    channels: list[str]
    priority: int
    enabled: bool
    origin: str  # settings | database
    setting: str | None  # the TRATO_… variable that configures it, for those in the settings
    settings: dict[str, Any]
    max_per_second: float | None
    circuit: dict[str, Any]
    updated_at: datetime | None = None


# -- sealing and showing settings --------------------------------------------------------------------


def _sealed(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        secret = value.get_secret_value()
        return {SEALED: seal(secret.decode() if isinstance(secret, bytes) else secret)}
    if isinstance(value, dict):
        return {key: _sealed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_sealed(item) for item in value]
    return to_jsonable_python(value)


def _opened(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {SEALED}:
            return unseal(value[SEALED])
        return {key: _opened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_opened(item) for item in value]
    return value


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        secret = value.get_secret_value()
        return masked(secret.decode() if isinstance(secret, bytes) else secret) if secret else ""
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(item) for item in value]
    return to_jsonable_python(value)


def shown_settings(settings: BaseModel) -> dict[str, Any]:
    """Settings as they may be shown: every secret masked."""
    return _shown(settings.model_dump(mode="python"))


def _validated(cls: type[ChannelAdapter], data: dict[str, Any]) -> BaseModel:
    known = set(cls.settings_model.model_fields)
    for key in sorted(set(data) - known):
        raise InvalidProvider(f"settings.{key}: the {cls.name} adapter has no such setting (it has "
                              f"{', '.join(sorted(known)) or 'none'})", details={"field": f"settings.{key}"})
    try:
        return explicit_settings(cls.settings_model, data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InvalidProvider(f"settings.{where}: {first['msg']}", details={"field": f"settings.{where}"}) from None


# -- reading ------------------------------------------------------------------------------------------


def _adapter_class(name: str) -> type[ChannelAdapter]:
    classes = registry.adapter_classes()
    if name not in classes:
        raise InvalidProvider(f"no channel adapter is called {name!r}; installed: {', '.join(sorted(classes))}",
                              details={"field": "adapter"})
    return classes[name]


def stored_providers(session: Session) -> list[StoredProvider]:
    """Stored providers by priority then name (the registry's order within a channel)."""
    rows = session.scalars(select(Provider).order_by(Provider.priority, Provider.name))
    return [StoredProvider(r.name, r.adapter, list(r.channels), r.priority, r.max_per_second, dict(r.settings),
                           iso(r.updated_at), r.enabled) for r in rows]


def build_adapter(stored: StoredProvider | Provider) -> ChannelAdapter:
    """The adapter of a stored provider, its secrets opened."""
    cls = registry.adapter_classes().get(stored.adapter)
    if cls is None:
        raise ConfigurationError("trato.channels", f"provider {stored.name} needs the {stored.adapter} adapter, "
                                                   "which is not installed")
    try:
        settings = explicit_settings(cls.settings_model, _opened(dict(stored.settings)))
    except ValidationError as exc:  # saved under an older version of the adapter
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigurationError(f"provider {stored.name}", f"settings.{where}: {first['msg']}; save the provider "
                                                            "again with valid settings") from None
    return cls(settings, instance=stored.name)


def get_provider(session: Session, name: str) -> Provider:
    """A stored provider by name."""
    row = session.get(Provider, name)
    if row is None:
        if name in registry.settings_names():
            raise ProviderReadOnly(f"provider {name} is written in the settings; change it there",
                                   details={"provider": name})
        raise ProviderNotFound(f"no provider called {name!r} is configured", details={"provider": name})
    return row


def list_providers(session: Session) -> list[ProviderView]:
    """Every provider: those in the settings (in their order), then the stored ones by priority."""
    views = []
    for configured in registry.settings_providers():
        views.append(ProviderView(
            configured.name, configured.adapter.name, list(configured.channels), configured.priority, True,
            "settings", configured.setting, shown_settings(configured.adapter.settings), configured.max_per_second,
            health().state(configured.name).as_dict()))
    for row in session.scalars(select(Provider).order_by(Provider.priority, Provider.name)):
        views.append(view_of(row))
    return views


def view_by_name(session: Session, name: str) -> ProviderView:
    """One provider (in the settings or stored) as it may be shown."""
    for view in list_providers(session):
        if view.name == name:
            return view
    raise ProviderNotFound(f"no provider called {name!r} is configured", details={"provider": name})


def view_of(row: Provider) -> ProviderView:
    """A stored provider as it may be shown."""
    cls = registry.adapter_classes().get(row.adapter)
    try:
        settings = shown_settings(explicit_settings(cls.settings_model, _opened(dict(row.settings)))) if cls else {}
    except (ValidationError, ValueError, TratoError):  # e.g. sealed with another key: shown as unreadable
        settings = {}
    return ProviderView(row.name, row.adapter, list(row.channels), row.priority, row.enabled, "database", None,
                        settings, row.max_per_second, health().state(row.name).as_dict(), row.updated_at)


# -- changing -----------------------------------------------------------------------------------------


def _changed(session: Session) -> None:
    values = {"stamp": uuid.uuid4().hex, "changed_at": utcnow()}
    session.execute(insert_for(session)(ProviderStamp).values(id=1, **values)
                    .on_conflict_do_update(index_elements=["id"], set_=values))


def _channels(cls: type[ChannelAdapter], channels: list[str] | None) -> list[str]:
    if not channels:
        return list(cls.channels)
    for channel in channels:
        if channel not in CHANNELS:
            raise InvalidProvider(f"channel {channel!r} does not exist; use one of {', '.join(CHANNELS)}",
                                  details={"field": "channels"})
        if channel not in cls.channels:
            raise InvalidProvider(f"the {cls.name} adapter does not send {channel} (it sends "
                                  f"{', '.join(cls.channels)})", details={"field": "channels"})
    return list(dict.fromkeys(channels))


def _check_name(name: str) -> None:
    if not registry.NAME.match(name):
        raise InvalidProvider("a provider's name is lower-case letters, digits and dashes (40 at most), "
                              "e.g. twilio-es", details={"field": "name"})


def _rate(value: float | None) -> float | None:
    if value is not None and not 0 < value <= 100_000:
        raise InvalidProvider("max_per_second must be above 0 and at most 100000", details={"field": "max_per_second"})
    return value


def add_provider(
    session: Session, *, actor: str, name: str, adapter: str | None = None, url: str | None = None,
    channels: list[str] | None = None, priority: int = 100, enabled: bool = True,
    settings: dict[str, Any] | None = None, max_per_second: float | None = None,
) -> Provider:
    """Store a new provider, from its adapter and settings or from one URL (``smtp://…``)."""
    _check_name(name)
    if name in registry.settings_names() or session.get(Provider, name) is not None:
        raise ProviderExists(f"a provider called {name} exists already", details={"provider": name})
    if url is not None:
        if adapter is not None or settings:
            raise InvalidProvider("give a URL, or an adapter and its settings, not both", details={"field": "url"})
        try:
            cls, model, _ = registry.settings_from_url(url)
        except ValueError as exc:
            raise InvalidProvider(str(exc), details={"field": "url"}) from None
    else:
        if adapter is None:
            raise InvalidProvider("give the provider's adapter (e.g. smtp) or a URL", details={"field": "adapter"})
        cls = _adapter_class(adapter)
        model = _validated(cls, dict(settings or {}))
    now = utcnow()
    row = Provider(name=name, adapter=cls.name, channels=_channels(cls, channels), priority=priority,
                   enabled=enabled, settings=_sealed(model.model_dump(mode="python")),
                   max_per_second=_rate(max_per_second), created_by=actor, created_at=now, updated_at=now)
    session.add(row)
    audit.record(session, actor=actor, action="delivery.provider.add", object_type="provider", object_id=name,
                 adapter=cls.name, channels=row.channels, priority=priority, enabled=enabled,
                 max_per_second=max_per_second)
    _changed(session)
    session.flush()
    log.info("provider added", provider=name, adapter=cls.name, channels=row.channels)
    return row


_UNSET: Any = object()


def update_provider(
    session: Session, *, actor: str, name: str, channels: list[str] | None = None, priority: int | None = None,
    enabled: bool | None = None, settings: dict[str, Any] | None = None, url: str | None = None,
    max_per_second: float | None = _UNSET,
) -> Provider:
    """Change a stored provider. ``settings`` are merged into the stored ones: fields not given keep
    their value, and a secret given back as shown (``••••1234``) is kept as it was."""
    row = session.get(Provider, name, with_for_update=True) or get_provider(session, name)
    cls = _adapter_class(row.adapter)
    changed: list[str] = []
    if url is not None:
        if settings:
            raise InvalidProvider("give a URL or settings, not both", details={"field": "url"})
        try:
            url_cls, model, _ = registry.settings_from_url(url)
        except ValueError as exc:
            raise InvalidProvider(str(exc), details={"field": "url"}) from None
        if url_cls is not cls:
            raise InvalidProvider(f"this provider uses the {cls.name} adapter; the URL is for {url_cls.name}",
                                  details={"field": "url"})
        row.settings = _sealed(model.model_dump(mode="python"))
        changed.append("settings")
    if settings:
        current = _opened(dict(row.settings))
        for key, value in settings.items():
            if isinstance(value, str) and value.startswith(MASK):
                continue  # shown masked and sent back unchanged
            current[key] = value
        row.settings = _sealed(_validated(cls, current).model_dump(mode="python"))
        changed.extend(f"settings.{key}" for key in sorted(settings))
    if channels is not None:
        row.channels = _channels(cls, channels)
        changed.append("channels")
    if priority is not None:
        row.priority = priority
        changed.append("priority")
    if enabled is not None:
        row.enabled = enabled
        changed.append("enabled")
    if max_per_second is not _UNSET:
        row.max_per_second = _rate(max_per_second)
        changed.append("max_per_second")
    row.updated_at = utcnow()
    audit.record(session, actor=actor, action="delivery.provider.change", object_type="provider", object_id=name,
                 changed=changed, enabled=row.enabled, priority=row.priority, channels=row.channels)
    _changed(session)
    session.flush()
    return row


def remove_provider(session: Session, *, actor: str, name: str) -> None:
    """Delete a stored provider (its past messages keep its name)."""
    row = get_provider(session, name)
    session.delete(row)
    audit.record(session, actor=actor, action="delivery.provider.remove", object_type="provider", object_id=name,
                 adapter=row.adapter)
    _changed(session)
    session.flush()


def check_provider(session: Session, *, name: str) -> CheckResult:
    """Test the connection and credentials of a provider (stored, disabled ones too, or in the
    settings) without sending anything."""
    configured = registry.settings_providers_by_name().get(name)
    try:
        adapter = configured.adapter if configured is not None else build_adapter(get_provider(session, name))
    except ConfigurationError as exc:
        return CheckResult(False, exc.message)
    try:
        return adapter.check()
    except Exception as exc:  # an adapter's bug must not become a 500 on a test button
        log.warning("provider check failed", provider=name, error=type(exc).__name__)
        return CheckResult(False, f"the {adapter.name} adapter failed while testing: {type(exc).__name__}")
    finally:
        if configured is None:
            adapter.close()
