"""Identifiers: sortable, URL-safe, prefixed by what they name (``cus_01J…``).

48 bits of milliseconds then 80 random bits, Crockford base32 — ULID's layout, so ids sort by
creation time and index well.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ulid(ms: int | None = None) -> str:
    if ms is None:
        ms = time.time_ns() // 1_000_000
    return _encode(ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"
