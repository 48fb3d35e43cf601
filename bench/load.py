"""The load generator: sends prepared tracking requests over a few keep-alive connections.

It runs in its own process so that its CPU is not counted inside the server's. The default
client speaks plain HTTP/1.1 over asyncio streams (a few microseconds of CPU per request, which
matters on a two-core machine); ``httpx`` is there to cross-check it with a standard client.
The bodies are built before the clock starts; the clock runs from the first request written to
the last response read.
"""

from __future__ import annotations

import asyncio
import base64
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

import workload


@dataclass
class LoadSpec:
    phase: str  # "batch" (POST /v1/batch) or "single" (POST /v1/track)
    host: str
    port: int
    write_key: str
    events: int
    clients: int
    seed: int
    people: int
    batch_size: int = 100
    client: str = "raw"  # or "httpx"
    path: str = ""
    timeout: float = 600.0


@dataclass
class LoadResult:
    requests: int = 0
    events: int = 0
    ok: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0
    prepare_seconds: float = 0.0
    error: str | None = None


def _bodies(spec: LoadSpec) -> list[tuple[bytes, int]]:
    people = workload.population(spec.people, spec.seed)
    calls = workload.Calls(people, seed=spec.seed, stream=spec.phase)
    if spec.phase == "batch":
        bodies = workload.batch_bodies(calls, spec.events, spec.batch_size)
        return [(body, len(orjson.loads(body)["batch"])) for body in bodies]
    return [(body, 1) for body in workload.track_bodies(calls, spec.events)]


def run(spec: LoadSpec, ready: Any = None, go: Any = None) -> LoadResult:
    """Prepare the bodies, then send them all; never raises (the error is in the result).

    With ``ready``/``go`` events, says when the bodies are built and waits for the go.
    """
    result = LoadResult()
    started = time.perf_counter()
    try:
        bodies = _bodies(spec)
        result.prepare_seconds = time.perf_counter() - started
        result.requests = len(bodies)
        result.events = sum(n for _, n in bodies)
        if ready is not None:
            ready.set()
            if not go.wait(spec.timeout):
                raise TimeoutError
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        send = _send_raw if spec.client == "raw" else _send_httpx
        asyncio.run(asyncio.wait_for(send(spec, bodies, result), spec.timeout))
        after = resource.getrusage(resource.RUSAGE_SELF)
        result.client_cpu = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    except TimeoutError:
        result.error = f"the {spec.phase} phase did not finish within {spec.timeout:.0f} s"
    except Exception as exc:  # reported by the parent, which decides
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def _check(result: LoadResult, status: int, body: bytes, expected: int) -> None:
    if status != 200:
        result.failures[f"HTTP {status}: {body[:200].decode(errors='replace')}"] += 1
        return
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        result.failures[f"not JSON: {body[:200]!r}"] += 1
        return
    if answer.get("success") is not True or answer.get("accepted") != expected:
        result.failures[f"200 but {body[:200].decode(errors='replace')}"] += 1
        return
    result.ok += 1


def _authorization(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


async def _send_raw(spec: LoadSpec, bodies: list[tuple[bytes, int]], result: LoadResult) -> None:
    head = (
        f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
        f"Authorization: {_authorization(spec.write_key)}\r\nContent-Type: application/json\r\n"
        "User-Agent: trato-bench\r\nContent-Length: "
    ).encode()
    requests = [head + str(len(body)).encode() + b"\r\n\r\n" + body for body, _ in bodies]
    work = iter(range(len(requests)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(spec.host, spec.port)
        try:
            for index in work:
                began = time.perf_counter()
                try:
                    writer.write(requests[index])
                    status, body = await _response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    result.failures[f"{type(exc).__name__}: {exc}"] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(spec.host, spec.port)
                    continue
                result.latencies.append(time.perf_counter() - began)
                _check(result, status, body, bodies[index][1])
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(spec.clients)))
    result.wall = time.perf_counter() - began


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not expected from the tracking API")
    return status, await reader.readexactly(length) if length else b""


async def _send_httpx(spec: LoadSpec, bodies: list[tuple[bytes, int]], result: LoadResult) -> None:
    import httpx

    headers = {"Authorization": _authorization(spec.write_key), "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=spec.clients, max_keepalive_connections=spec.clients)
    url = f"http://{spec.host}:{spec.port}{spec.path}"
    work = iter(range(len(bodies)))
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def connection() -> None:
            for index in work:
                began = time.perf_counter()
                try:
                    response = await client.post(url, content=bodies[index][0], headers=headers)
                except httpx.HTTPError as exc:
                    result.failures[f"{type(exc).__name__}: {exc}"] += 1
                    continue
                result.latencies.append(time.perf_counter() - began)
                _check(result, response.status_code, response.content, bodies[index][1])

        began = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(spec.clients)))
        result.wall = time.perf_counter() - began


def child(spec: LoadSpec, results: Any, ready: Any, go: Any) -> None:
    """Entry point of the load-generator process: puts one LoadResult on ``results``."""
    results.put(run(spec, ready, go))


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` fall (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
