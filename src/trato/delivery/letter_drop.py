"""Where closed letter batches go: a folder the print house reads (``file:///path``, e.g. a share
it mounts) or its SFTP server (``sftp://user@host:port/path``).

Each batch is one directory named after it, holding ``000001.pdf``… and then ``manifest.csv``
and ``manifest.json``. Every file is written under a temporary name and renamed into place, and
the manifests come last — ``manifest.json`` is the very last file — so a print house that waits
for the manifest never picks up half a batch. A drop that stopped half way (a crash, a dropped
connection) is simply done again: the PDFs already there with the right content are kept, and a
batch whose manifest is already there unchanged is left as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from trato.delivery.letters import BatchFiles

MANIFESTS = ("manifest.csv", "manifest.json")  # in this order: the JSON one says the batch is complete


class DropTarget(Protocol):
    def drop(self, files: BatchFiles) -> str:
        """Put the batch's files in place; returns where they are. Raises on failure."""

    def check(self) -> str:
        """Reach the drop without writing anything; returns what was found. Raises on failure."""


def _files(files: BatchFiles) -> Iterator[tuple[str, bytes]]:
    yield from files.pdfs()
    yield MANIFESTS[0], files.manifest_csv
    yield MANIFESTS[1], files.manifest_json


class FolderDrop:
    """A directory on this machine (or a share mounted on it)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check(self) -> str:
        if not self.root.is_dir():
            raise OSError(f"{self.root} is not a directory")
        if not os.access(self.root, os.W_OK):
            raise OSError(f"{self.root} is not writable")
        return f"{self.root} is a writable directory"

    def drop(self, files: BatchFiles) -> str:
        folder = self.root / files.batch_id
        folder.mkdir(parents=True, exist_ok=True)
        done = folder / MANIFESTS[1]
        if done.exists() and done.read_bytes() == files.manifest_json:
            return str(folder)
        for name, data in _files(files):
            self.put(folder, name, data)
        _fsync_dir(folder)
        return str(folder)

    def put(self, folder: Path, name: str, data: bytes) -> None:
        """One file, complete or not at all: written aside, synced, renamed into place."""
        target = folder / name
        if name not in MANIFESTS and target.exists() and _sha(target.read_bytes()) == _sha(data):
            return
        part = folder / f".{name}.part"
        with open(part, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, target)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SftpDrop:
    """A directory on the print house's SFTP server (asyncssh). The server's host key is checked
    against ``known_hosts`` (the file given, else ~/.ssh/known_hosts)."""

    def __init__(self, *, host: str, port: int, username: str, root: str, password: str | None = None,
                 key: str | None = None, known_hosts: str | None = None, timeout: float = 30.0) -> None:
        self.host, self.port, self.username, self.root = host, port, username, root.rstrip("/") or "/"
        self.password, self.key, self.known_hosts, self.timeout = password, key, known_hosts, timeout

    def _run(self, coroutine: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        with ThreadPoolExecutor(max_workers=1) as pool:  # called from a thread that runs a loop
            return pool.submit(asyncio.run, coroutine).result()

    def _connect(self) -> Any:
        with warnings.catch_warnings():  # asyncssh still imports DSA support, which cryptography deprecates
            warnings.filterwarnings("ignore", message="DSA is deprecated")
            import asyncssh

        options: dict[str, Any] = {"port": self.port, "username": self.username, "connect_timeout": self.timeout}
        if self.password is not None:
            options["password"] = self.password
        if self.key:
            options["client_keys"] = [self.key]
        if self.known_hosts:
            options["known_hosts"] = self.known_hosts
        return asyncssh.connect(self.host, **options)

    def check(self) -> str:
        async def run() -> str:
            async with self._connect() as connection, connection.start_sftp_client() as sftp:
                if not await sftp.isdir(self.root):
                    raise OSError(f"{self.root} is not a directory on {self.host}")
                return f"{self.host}:{self.root} is reachable"

        return self._run(run())

    def drop(self, files: BatchFiles) -> str:
        return self._run(self._drop(files))

    async def _drop(self, files: BatchFiles) -> str:
        folder = f"{self.root}/{files.batch_id}"
        location = f"sftp://{self.username}@{self.host}:{self.port}{folder}"
        async with self._connect() as connection, connection.start_sftp_client() as sftp:
            await sftp.makedirs(folder, exist_ok=True)
            done = f"{folder}/{MANIFESTS[1]}"
            if await sftp.exists(done):
                async with sftp.open(done, "rb") as handle:
                    if await handle.read() == files.manifest_json:
                        return location
            for name, data in _files(files):
                await self._put(sftp, folder, name, data)
        return location

    async def _put(self, sftp: Any, folder: str, name: str, data: bytes) -> None:
        target, part = f"{folder}/{name}", f"{folder}/.{name}.part"
        if name not in MANIFESTS and await sftp.exists(target):
            async with sftp.open(target, "rb") as handle:
                if _sha(await handle.read()) == _sha(data):
                    return
        async with sftp.open(part, "wb") as handle:
            await handle.write(data)
        try:
            await sftp.posix_rename(part, target)
        except Exception:  # a server without the posix-rename extension: SFTP's rename will not overwrite
            if await sftp.exists(target):
                await sftp.remove(target)
            await sftp.rename(part, target)
