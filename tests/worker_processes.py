"""Real `trato worker` processes for tests, each logging to a file of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def start(env: Mapping[str, str], folder: Path, *, threads: int, number: int) -> subprocess.Popen[bytes]:
    """A `trato worker` with ``threads`` threads, run in ``folder`` and logging to worker-N.log there."""
    log = open(folder / f"worker-{number}.log", "wb")  # noqa: SIM115 (closed by stop)
    process = subprocess.Popen([sys.executable, "-m", "trato", "worker", "--workers", str(threads)], env=dict(env),
                               cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    process.log = log  # type: ignore[attr-defined]
    return process


def stop(processes: list[subprocess.Popen[bytes]], *, wait: float = 20) -> None:
    """SIGTERM to those still running (they need not wait for idle threads), a kill for any that
    does not stop within ``wait`` seconds; their logs closed."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        process.log.close()  # type: ignore[attr-defined]
