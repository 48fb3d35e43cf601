"""How archived content is compressed: Zstandard (level 1), read back by its frame's magic number.

An archived e-mail's parts are ~16 KB of HTML and text. zlib at level 1 took ~115 µs to compress
one on this project's 2-core machines, zstd at level 1 ~21 µs for a smaller result (2.8 KB
against 2.9 KB), and a campaign compresses one for every message it sends. Entries written
before zstd (zlib streams) still read: a zstd frame starts with the bytes ``28 B5 2F FD``, which
no zlib stream can (its first byte is ``0x78`` for every window size zlib writes). The chain
hashes the uncompressed content, so the codec is not part of what an entry proves.
"""

from __future__ import annotations

import threading
import zlib

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LEVEL = 1
# Archived content is trato's own (at most a letter's PDF); a stored size past this is corrupt.
MAX_SIZE = 256 * 1024 * 1024


class CorruptContent(ValueError):
    """The stored bytes are neither a zstd frame nor a zlib stream that decompresses."""


_local = threading.local()  # zstandard's (de)compressor objects are not safe to share between threads


def compress(data: bytes) -> bytes:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return compressor.compress(data)


def decompress(stored: bytes) -> bytes:
    """The content as it was archived, whichever codec wrote it."""
    stored = bytes(stored)
    try:
        if stored[:4] == ZSTD_MAGIC:
            decompressor = getattr(_local, "decompressor", None)
            if decompressor is None:
                decompressor = _local.decompressor = zstandard.ZstdDecompressor()
            return decompressor.decompress(stored, max_output_size=MAX_SIZE)
        return zlib.decompress(stored)
    except (zstandard.ZstdError, zlib.error) as exc:
        raise CorruptContent(str(exc)) from exc
