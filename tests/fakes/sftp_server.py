"""A print house's SFTP server on loopback (asyncssh, in a thread with its own event loop): key
authentication for one user, a chroot directory, a host key the client must know, and a switch
that makes writing the manifest fail (a drop interrupted between the PDFs and the manifest)."""

from __future__ import annotations

import asyncio
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

with warnings.catch_warnings():  # asyncssh still imports DSA support, which cryptography deprecates
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh


@dataclass
class SftpPeer:
    root: Path
    client_key: Path
    known_hosts: Path
    port: int = 0
    user: str = "printer"
    fail_manifest: int = 0  # how many manifest writes fail from now on
    opened: list[str] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    server: Any = None

    def url(self, path: str = "/inbox") -> str:
        return (f"sftp://{self.user}@127.0.0.1:{self.port}{path}?key={self.client_key}"
                f"&known_hosts={self.known_hosts}")


def start(workdir: Path) -> SftpPeer:
    root = workdir / "sftp-root"
    (root / "inbox").mkdir(parents=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = workdir / "client_ed25519"
    client_key.write_private_key(str(key_path))
    peer = SftpPeer(root=root, client_key=key_path, known_hosts=workdir / "known_hosts")

    class Server(asyncssh.SFTPServer):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

        def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
            name = path.decode()
            peer.opened.append(name)
            if peer.fail_manifest and "manifest" in name and pflags & asyncssh.FXF_WRITE:
                peer.fail_manifest -= 1
                raise asyncssh.SFTPFailure("connection to the print house lost")
            return super().open(path, pflags, attrs)

    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        peer.loop = loop
        asyncio.set_event_loop(loop)
        authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

        async def serve() -> None:
            peer.server = await asyncssh.create_server(
                asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[host_key],
                authorized_client_keys=authorized, sftp_factory=Server, allow_scp=False,
            )
            peer.port = peer.server.sockets[0].getsockname()[1]
            ready.set()

        loop.run_until_complete(serve())
        loop.run_forever()

    threading.Thread(target=run, name="sftp-peer", daemon=True).start()
    ready.wait(10)
    public = host_key.export_public_key().decode().strip()
    peer.known_hosts.write_text(f"[127.0.0.1]:{peer.port} {public}\n")
    return peer


def stop(peer: SftpPeer) -> None:
    if peer.loop is not None and peer.server is not None:
        peer.loop.call_soon_threadsafe(peer.server.close)
        peer.loop.call_soon_threadsafe(peer.loop.stop)
