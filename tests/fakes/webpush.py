"""A Web Push service on loopback (RFC 8030), strict as the real ones: it checks the VAPID
``Authorization: vapid t=…, k=…`` header (ES256 signature with the key in ``k``, ``aud`` the
endpoint's origin, ``exp`` within 24 hours, ``sub`` a mailto: or https: contact, ``k`` the key the
subscription was made with), the ``TTL``, ``Urgency``, ``Topic`` and ``Content-Encoding`` headers
and the 4096-byte limit — and, unlike a real one, it decrypts the ``aes128gcm`` body (RFC 8291,
written out here independently of the library trato uses) with the browser's private key, so
tests assert what the browser would show.

Answers as push services do: 201 + ``Location`` for a message, 410 Gone for an expired
subscription, 404 for an unknown one, 403 for a VAPID key other than the subscription's, 400 for
bad headers, 413 for a body too large.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.fakes.server import FakeServer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def new_vapid_key() -> tuple[str, str]:
    """An application server key pair as ``web-push generate-vapid-keys`` prints it (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64(key.private_numbers().private_value.to_bytes(32, "big")), b64(_point(key.public_key()))


@dataclass
class Browser:
    """One browser's subscription: what ``PushManager.subscribe`` made, private key included."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None
    expired: bool = False

    def subscription(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64(_point(self.private_key.public_key())), "auth": b64(self.auth)}}


@dataclass
class Received:
    browser: str
    headers: dict[str, str]
    claims: dict[str, Any]
    plaintext: bytes
    location: str

    def json(self) -> Any:
        return json.loads(self.plaintext)


@dataclass
class _State:
    browsers: dict[str, Browser] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def decrypt(body: bytes, browser: Browser) -> bytes:
    """RFC 8291 §3.4 + RFC 8188: the aes128gcm body decrypted with the browser's keys (one record)."""
    salt, rs, idlen = body[:16], struct.unpack("!I", body[16:20])[0], body[20]
    sender_public = body[21:21 + idlen]
    records = body[21 + idlen:]
    if idlen != 65 or len(records) > rs:
        raise ValueError("one record with a 65-byte key id expected")
    ua_public = _point(browser.private_key.public_key())
    shared = browser.private_key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), sender_public))
    prk_key = _hmac(browser.auth, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + ua_public + sender_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    padded = AESGCM(cek).decrypt(nonce, records, None).rstrip(b"\x00")
    if not padded.endswith(b"\x02"):
        raise ValueError("the last record's delimiter is missing")
    return padded[:-1]


def _verify_vapid(authorization: str, origin: str) -> tuple[str, dict[str, Any]]:
    """(k, claims) of a valid ``vapid t=…, k=…`` header; ValueError saying what is wrong."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError("Authorization must use the vapid scheme (RFC 8292)")
    params = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    token, key = params.get("t", ""), params.get("k", "")
    try:
        head, payload, signature = token.split(".")
        header, claims = json.loads(unb64(head)), json.loads(unb64(payload))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
        raw = unb64(signature)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed VAPID token or key: {exc}") from None
    if header.get("alg") != "ES256" or len(raw) != 64:
        raise ValueError("the VAPID token must be ES256 with a 64-byte signature")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("the VAPID signature does not verify") from None
    now = time.time()
    if claims.get("aud") != origin:
        raise ValueError(f"aud {claims.get('aud')!r} is not the push service's origin {origin}")
    if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 86400:
        raise ValueError("exp must be in the next 24 hours")
    if not re.match(r"^(mailto:.+@.+|https://.+)$", str(claims.get("sub", ""))):
        raise ValueError("sub must be a mailto: or https: contact")
    return key, claims


class WebPushService(FakeServer):
    """The push service; ``subscribe()`` plays the browser; ``received`` is what arrived, decrypted."""

    def __init__(self) -> None:
        self.state = _State()
        super().__init__()

    @property
    def received(self) -> list[Received]:
        return self.state.received

    def reset(self) -> None:
        self.reset_faults()
        self.state = _State()

    def subscribe(self, application_server_key: str | None = None) -> Browser:
        """A browser subscribing with ``applicationServerKey`` (the VAPID public key, or None)."""
        ident = uuid.uuid4().hex
        browser = Browser(ident, f"{self.origin}/wpush/v2/{ident}", ec.generate_private_key(ec.SECP256R1()),
                          os.urandom(16), application_server_key)
        self.state.browsers[ident] = browser
        return browser

    def expire(self, browser: Browser) -> None:
        """The user revoked permission or the subscription expired: the service answers 410 Gone."""
        browser.expired = True

    def _error(self, status: int, errno: int, message: str) -> tuple[int, dict[str, str], Any]:
        self.state.rejected.append((status, message))
        return status, {}, {"code": status, "errno": errno, "error": {400: "Bad Request", 403: "Forbidden",
                            404: "Not Found", 410: "Gone", 413: "Payload Too Large"}.get(status, "Error"),
                            "message": message}

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        match = re.fullmatch(r"/wpush/v2/([0-9a-f]{32})", path)
        if method != "POST" or match is None:
            return self._error(404, 102, "Request did not validate invalid token")
        browser = self.state.browsers.get(match.group(1))
        if browser is None:
            return self._error(404, 102, "Request did not validate invalid token")
        if browser.expired:
            return self._error(410, 106, "Request did not validate subscription expired")
        try:
            key, claims = _verify_vapid(headers.get("Authorization", ""), self.origin)
        except ValueError as exc:
            return self._error(401 if "Authorization" not in headers else 403, 109, str(exc))
        if browser.application_server_key and key != browser.application_server_key:
            return self._error(403, 109, "the VAPID key is not the one the subscription was made with")
        ttl = headers.get("TTL", "")
        if not ttl.isdigit():
            return self._error(400, 111, "Missing TTL header")
        if headers.get("Urgency", "normal") not in ("very-low", "low", "normal", "high"):
            return self._error(400, 111, "Invalid Urgency header")
        topic = headers.get("Topic")
        if topic is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic):
            return self._error(400, 111, "Invalid Topic header")
        if len(body) > 4096:
            return self._error(413, 104, "Payload too large")
        if body and headers.get("Content-Encoding") != "aes128gcm":
            return self._error(400, 110, "Unknown Content-Encoding")
        try:
            plaintext = decrypt(body, browser)
        except (ValueError, InvalidTag, IndexError, struct.error) as exc:
            return self._error(400, 110, f"the body does not decrypt: {type(exc).__name__}")
        location = f"{self.origin}/m/{uuid.uuid4().hex}"
        received = {k.lower(): v for k, v in headers.items()}
        self.state.received.append(Received(browser.id, received, claims, plaintext, location))
        return 201, {"Location": location, "TTL": ttl}, None
