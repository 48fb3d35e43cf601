"""DKIM signing (RFC 6376) of outgoing mail with dkimpy: the receiving server fetches the public key
from ``{selector}._domainkey.{domain}`` and checks that the signed headers and the body arrived as
we sent them, which is what Gmail and Yahoo require of bulk senders.

The signature is computed over the exact bytes handed to the SMTP server (CRLF line ends),
relaxed/relaxed canonicalisation, RSA-SHA256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from trato.core.errors import ConfigurationError

# Headers whose change would change the meaning of the mail. Those absent are signed as absent, so
# nobody can add one (e.g. a List-Unsubscribe on a transactional mail) without breaking the seal.
DEFAULT_HEADERS: tuple[str, ...] = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "Content-Language", "List-Unsubscribe", "List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    private_key: bytes
    headers: tuple[str, ...] = DEFAULT_HEADERS

    @classmethod
    def from_settings(cls, *, domain: str | None, selector: str | None, key: str | None, key_path: Path | None,
                      headers: tuple[str, ...] | list[str], prefix: str = "TRATO_SMTP_") -> DkimSigner | None:
        """The signer the settings describe, None when DKIM is off; a wrong setting is named."""
        if not any((domain, selector, key, key_path)):
            return None
        if not domain:
            raise ConfigurationError(f"{prefix}DKIM_DOMAIN", "DKIM signing needs the signing domain (d=)")
        if not selector:
            raise ConfigurationError(f"{prefix}DKIM_SELECTOR", "DKIM signing needs the selector (s=) of the DNS key")
        if bool(key) == bool(key_path):
            raise ConfigurationError(f"{prefix}DKIM_PRIVATE_KEY",
                                     f"give the private key (PEM) or {prefix}DKIM_PRIVATE_KEY_PATH, exactly one")
        setting = f"{prefix}DKIM_PRIVATE_KEY"
        if key_path is not None:
            setting = f"{prefix}DKIM_PRIVATE_KEY_PATH"
            try:
                pem = key_path.read_bytes()
            except OSError as exc:
                raise ConfigurationError(setting, f"cannot read {key_path}: {exc.strerror}") from None
        else:
            pem = (key or "").replace("\\n", "\n").encode()  # one-line env values keep \n escaped
        try:
            parse_pem_private_key(pem)
        except (UnparsableKeyError, ValueError, IndexError):
            raise ConfigurationError(setting, "is not an RSA private key in PEM form") from None
        if "from" not in {h.lower() for h in headers}:
            raise ConfigurationError(f"{prefix}DKIM_HEADERS", "must include From (RFC 6376 5.4)")
        return cls(domain, selector, pem, tuple(headers))

    def sign(self, data: bytes) -> bytes:
        """``data`` with its DKIM-Signature header in front."""
        signature = dkim.sign(data, self.selector.encode(), self.domain.encode(), self.private_key,
                              canonicalize=(b"relaxed", b"relaxed"),
                              include_headers=[h.lower().encode() for h in self.headers])
        return signature + data
