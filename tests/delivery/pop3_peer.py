"""A small real POP3 server (RFC 1939) on loopback: USER/PASS, STAT, LIST, UIDL, RETR with dot
stuffing, DELE, RSET, NOOP, QUIT — deletions happen only at QUIT (the UPDATE state), and the
maildrop is locked while a client holds it, as real servers do."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Maildrop:
    user: str = "rebotes"
    password: str = "pop-secret"
    messages: list[bytes] = field(default_factory=list)
    logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    drop_after_retr: bool = False  # close the connection after the first RETR (a crash before QUIT)


class _Handler(socketserver.StreamRequestHandler):
    server: Any

    def say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        drop: Maildrop = self.server.maildrop
        self.say("+OK POP3 server ready")
        user, held, deleted = None, False, set()
        try:
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                command, _, argument = raw.decode().strip().partition(" ")
                command = command.upper()
                if command == "QUIT":
                    if held:
                        drop.messages = [m for i, m in enumerate(drop.messages) if i not in deleted]
                    self.say("+OK bye")
                    return
                if command == "CAPA":
                    self.say("+OK\r\nUSER\r\nUIDL\r\n.")
                elif command == "USER":
                    user = argument
                    self.say("+OK")
                elif command == "PASS":
                    if user != drop.user or argument != drop.password:
                        self.say("-ERR [AUTH] invalid user or password")
                    elif not drop.lock.acquire(blocking=False):
                        self.say("-ERR [IN-USE] maildrop already locked")
                    else:
                        held = True
                        drop.logins += 1
                        self.say(f"+OK {len(drop.messages)} messages")
                elif not held:
                    self.say("-ERR not authenticated")
                elif command == "STAT":
                    live = [m for i, m in enumerate(drop.messages) if i not in deleted]
                    self.say(f"+OK {len(live)} {sum(len(m) for m in live)}")
                elif command == "LIST":
                    self.say("+OK\r\n" + "".join(f"{i + 1} {len(m)}\r\n" for i, m in enumerate(drop.messages)
                                                  if i not in deleted) + ".")
                elif command == "UIDL":
                    self.say("+OK\r\n" + "".join(f"{i + 1} uid{i + 1}\r\n" for i in range(len(drop.messages))
                                                  if i not in deleted) + ".")
                elif command in ("RETR", "DELE"):
                    index = int(argument) - 1 if argument.isdigit() else -1
                    if not 0 <= index < len(drop.messages) or index in deleted:
                        self.say("-ERR no such message")
                    elif command == "DELE":
                        deleted.add(index)
                        self.say("+OK deleted")
                    else:
                        body = drop.messages[index].replace(b"\r\n", b"\n").split(b"\n")
                        stuffed = [b"." + line if line.startswith(b".") else line for line in body]
                        self.wfile.write(b"+OK\r\n" + b"\r\n".join(stuffed).rstrip(b"\r\n") + b"\r\n.\r\n")
                        if drop.drop_after_retr:
                            return
                elif command == "RSET":
                    deleted.clear()
                    self.say("+OK")
                elif command == "NOOP":
                    self.say("+OK")
                else:
                    self.say("-ERR unknown command")
        finally:
            if held:
                drop.lock.release()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start() -> tuple[_Server, Maildrop]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.maildrop = Maildrop()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.maildrop  # type: ignore[attr-defined]
