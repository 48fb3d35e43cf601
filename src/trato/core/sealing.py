"""Secrets kept at rest (providers' credentials): sealed with Fernet (AES-128-CBC + HMAC-SHA256).

The key is ``TRATO_CREDENTIALS_KEY`` when set (a Fernet key, or any text of 32+ characters that
is stretched with HKDF), else derived from ``TRATO_SECRET_KEY`` with HKDF under its own label, so
the signing key of links and the sealing key are never the same bytes. Rotation is not built in:
changing the key makes what was sealed unreadable (:class:`SealBroken` names the setting); to
rotate, read every provider with the old key and save it again with the new one.
"""

from __future__ import annotations

import base64
import binascii
import threading

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trato.core.errors import ConfigurationError

LABEL = b"trato provider credentials v1"
_lock = threading.Lock()
_cache: dict[str, Fernet] = {}


class SealBroken(ConfigurationError):
    """A sealed value cannot be opened: the key changed or the value was altered."""

    code = "sealed_value_unreadable"


def _stretch(material: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LABEL).derive(material.encode())
    return base64.urlsafe_b64encode(key)


def _key_source() -> tuple[str, str]:
    from trato.core.settings import get_settings

    settings = get_settings()
    if settings.credentials_key is not None:
        return "TRATO_CREDENTIALS_KEY", settings.credentials_key.get_secret_value()
    return "TRATO_SECRET_KEY", settings.resolved_secret_key()


def _is_fernet_key(material: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(material.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def _fernet() -> tuple[str, Fernet]:
    setting, material = _key_source()
    with _lock:
        fernet = _cache.get(material)
        if fernet is None:
            if setting == "TRATO_CREDENTIALS_KEY" and _is_fernet_key(material):
                key = material.encode()  # as made by Fernet.generate_key()
            elif len(material) < 32:
                raise ConfigurationError(setting, "must be a Fernet key or at least 32 characters")
            else:
                key = _stretch(material)
            fernet = Fernet(key)
            _cache.clear()
            _cache[material] = fernet
        return setting, fernet


def seal(value: str) -> str:
    """``value`` encrypted and authenticated, as text safe to store in JSON."""
    return _fernet()[1].encrypt(value.encode()).decode()


def unseal(token: str) -> str:
    """What :func:`seal` sealed; :class:`SealBroken` when the key changed or the token was altered."""
    setting, fernet = _fernet()
    try:
        return fernet.decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SealBroken(setting, "a stored credential cannot be decrypted: the key changed since it was saved, "
                                  "or the value was altered; set the key it was saved with, or save the provider "
                                  "again") from None


def masked(value: str) -> str:
    """A secret as it may be shown: bullets, and its last four characters when it is long enough."""
    return "••••" + (value[-4:] if len(value) >= 12 else "")
