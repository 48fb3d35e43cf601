"""Identifiers: sortable, URL-safe, prefixed by what they name (``cus_01J…``).

48 bits of milliseconds then 80 random bits, Crockford base32 — ULID's layout, so ids sort by
creation time and index well.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_lock = threading.Lock()
_last = (0, 0)


def new_ulid() -> str:
    """Monotonic within the process: ids made in the same millisecond still sort in order."""
    global _last
    ms = time.time_ns() // 1_000_000
    with _lock:
        last_ms, last_random = _last
        if ms <= last_ms:
            ms, random = last_ms, (last_random + 1) % (1 << 80)
        else:
            random = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
        _last = (ms, random)
    return _encode(ms, 10) + _encode(random, 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"
