"""A fully personalised e-mail campaign end to end on a generated memory, beside a bare loop.

    .venv/bin/python bench/campaign.py [--customers 1000000] [--db sqlite|postgresql] [--chunk 500]
                                       [--baseline 50000] [--path /tmp/trato-campaign.db] [--reuse]
                                       [--workers N] [--pg-database trato_bench_segments]

Generates ``--customers`` profiles with an e-mail address and marketing consent (straight through
the driver, as bench/segments.py does), an approved marketing e-mail of about 2 KB of MJML with
the customer's name, a locale-formatted amount and three product recommendations chosen from the
customer's plan trait (and its plain-text part as a template of its own), and a segment of everyone. Then a campaign is launched (snapshot,
recipients copied in one INSERT … SELECT) and run chunk by chunk in this process through the
policy (bulk decisions and contact bookings), rendering, the hash-chained archive (one append per
chunk) and the sandbox provider. Printed: messages per second end to end (target ≥ 3,300), the
bare loop's rate (render the same template for the same customers and insert the rows; the same
run, over the first ``--baseline`` customers) and the ratio (target ≥ 25 %), the resident memory
at each tenth of the run and at its peak (it must stay flat), and whether the archive verifies.

With ``--workers N`` (``--db postgresql`` and ``TRATO_REDIS_URL=redis://127.0.0.1:6379/<db>``) the
chunks are not run in this process: N real ``trato worker`` processes are started (one thread each,
sandbox e-mail provider, ``TRATO_CAMPAIGN_PARALLELISM=N``), the launch queues N runs in Redis, and this process
polls the progress until the campaign is done. The same figures are printed, with the workers'
resident memory (from /proc/<pid>/status) at each tenth and their peaks.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import segments  # noqa: E402  (the generator of bench/segments.py)

MJML = """<mjml><mj-head><mj-title>{{ customer.first_name }}</mj-title>
<mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif"></mj-all></mj-attributes></mj-head>
<mj-body background-color="#ffffff">
<mj-section><mj-column><mj-text font-size="22px" color="#111111">Hola {{ customer.first_name }} {{ customer.last_name }},</mj-text>
<mj-text font-size="15px" color="#222222" line-height="22px">Como cliente {{ customer.plan }} en {{ customer.city }},
tienes {{ (customer.age * 12.5)|money }} de saldo para tus próximas compras hasta final de mes. Estas son nuestras
recomendaciones para ti, elegidas a partir de lo que más te gusta:</mj-text></mj-column></mj-section>
{% for p in data.recommendations[customer.plan] %}
<mj-section><mj-column><mj-text font-size="16px" color="#111111"><strong>{{ p.name }}</strong></mj-text>
<mj-text font-size="14px" color="#333333">{{ p.description }} · {{ p.price|money }}</mj-text>
<mj-button background-color="#1d4ed8" color="#ffffff" href="https://shop.example.com/p/{{ p.sku }}">Ver producto</mj-button>
</mj-column></mj-section>
{% endfor %}
<mj-section><mj-column><mj-text font-size="12px" color="#444444" line-height="18px">Recibes este mensaje porque
aceptaste recibir ofertas de {{ company.name }}. Puedes cambiar tus preferencias cuando quieras o darte de baja con un
solo clic. {{ company.name }} · {{ company.address }}.</mj-text>
<mj-text font-size="12px" color="#444444"><a href="{{ links.preferences }}">Preferencias</a> ·
<a href="{{ links.unsubscribe }}">Darse de baja</a></mj-text></mj-column></mj-section>
</mj-body></mjml>"""
TEXT = """Hola {{ customer.first_name }} {{ customer.last_name }},

Como cliente {{ customer.plan }} en {{ customer.city }}, tienes {{ (customer.age * 12.5)|money }} de saldo.
{% for p in data.recommendations[customer.plan] %}
- {{ p.name }} · {{ p.price|money }}: https://shop.example.com/p/{{ p.sku }}
{% endfor %}
Preferencias: {{ links.preferences }}
Darse de baja: {{ links.unsubscribe }}
"""
CATALOG = {plan: [{"sku": f"{plan}-{i}", "name": f"Producto {plan} {i}", "price": 19.9 + 10 * i,
                   "description": "Una selección pensada para tu plan, con envío gratuito y devolución sin coste."}
                  for i in range(1, 4)] for plan in ("gold", "silver", "bronze", "free")}


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:  # the process is gone
        return 0.0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pool_rss_mb() -> float:
    """Resident memory of the processes preparing chunks ahead (trato.campaigns.ahead), if any."""
    from trato.campaigns import ahead

    found = getattr(ahead._pool, "_processes", None) or {}
    return sum(rss_mb(pid) for pid in list(found))


def start_workers(count: int, env: dict[str, str], threads: int = 1) -> list[subprocess.Popen[bytes]]:
    """``count`` `trato worker` processes, returned once each one's consumer threads are up. One
    thread each: a run holds its thread, so the N runs go one to each process (with more threads
    two runs may share a process, and its interpreter lock)."""
    started = [subprocess.Popen([sys.executable, "-m", "trato", "worker", "--workers", str(threads)], env=env)
               for _ in range(count)]
    deadline = time.monotonic() + 120
    for process in started:
        while _threads(process.pid) <= threads and time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"a worker exited at start (code {process.returncode})")
            time.sleep(0.1)
    return started


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def add_consents(url: str, customers: int, dialect: str) -> None:
    """Marketing consent on e-mail for everyone, straight through the driver."""
    rows = [(f"cus_{i:09d}", "email", "marketing", "", "granted", "form", segments.iso(segments.NOW))
            for i in range(customers)]
    cols = "customer_id, channel, purpose, topic, state, source, updated_at"
    if dialect == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1])
        conn.executemany(f"INSERT OR IGNORE INTO policy_consents ({cols}) VALUES (?,?,?,?,?,?,?)", rows)
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, conn.cursor() as cur:
            segments._copy(cur, "policy_consents", cols, rows)


def setup() -> tuple[str, str]:
    """Policy defaults without quiet hours (the bench runs at any hour), the approved e-mail, a segment."""
    from trato.audiences import service as audiences
    from trato.content import service as content
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    with unit_of_work() as s:
        policy.install_defaults(s)
        for rule in policy.list_quiet_hours(s):
            policy.delete_quiet_hours(s, purpose=rule.purpose, channel=rule.channel, actor="bench")
        for cap in policy.list_caps(s):
            policy.delete_cap(s, cap_id=cap.id, actor="bench")
        found = content.create_communication(
            s, key="bench-offers", name="Ofertas personalizadas", purpose="marketing", department="marketing",
            actor="bench:author", kind="proactive", channels=["email"], languages=["es"], default_language="es",
            sample_data={"recommendations": CATALOG},
            content={"email": {"es": {"subject": "{{ customer.first_name }}, tus recomendaciones",
                                      "body_mjml": MJML, "text": TEXT}}})
        version = content.get_version(s, found.latest_version_id)
        content.submit(s, version_id=version.id, actor="bench:author")
        warnings = sorted({f["code"] for f in version.findings or [] if f.get("severity") == "warning"})
        content.approve(s, version_id=version.id, actor="bench:reviewer", acknowledge=warnings)
        segment = audiences.create_segment(s, name="Todos", actor="bench", definition={
            "type": "trait", "trait": "age", "op": "between", "values": [0, 200]})
        return found.id, segment.id


def bare_loop(communication_id: str, limit: int) -> float:
    """Render the same template for the first ``limit`` customers and insert the rows: messages/s."""
    from sqlalchemy import Column, MetaData, String, Table, Text, select

    from trato.content import rendering
    from trato.content import service as content
    from trato.content.errors import TemplateError
    from trato.core.db import get_engine, unit_of_work
    from trato.customers import service as customers

    table = Table("bench_rendered", MetaData(), Column("customer_id", String(40), primary_key=True),
                  Column("subject", Text), Column("html", Text))
    table.drop(get_engine(), checkfirst=True)
    table.create(get_engine())
    started, done, after = time.perf_counter(), 0, ""
    while done < limit:
        with unit_of_work() as s:
            ids = list(s.scalars(select(customers.Customer.id).where(customers.Customer.id > after)
                                 .order_by(customers.Customer.id).limit(min(500, limit - done))))
            if not ids:
                break
            communication, version = content.approved_version(s, communication_id=communication_id)
            values = rendering.customer_values_many(s, ids)
            rows = []
            for cid in ids:
                context = rendering.build_context(s, communication=communication, language="es", customer_id=cid,
                                                  data={"recommendations": CATALOG}, values=values[cid])
                try:
                    parts = rendering.render_parts(s, version=version, channel="email", language="es",
                                                   context=context, blocks={})
                except TemplateError:  # over the sandbox's time limit on a loaded machine, as the pipeline
                    continue
                rows.append({"customer_id": cid, "subject": parts["subject"], "html": parts["html"]})
            s.execute(table.insert(), rows)
            done, after = done + len(ids), ids[-1]
    elapsed = time.perf_counter() - started
    table.drop(get_engine())
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--baseline", type=int, default=50_000)
    parser.add_argument("--path", type=Path, default=Path("/tmp/trato-campaign.db"))
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--workers", type=int, default=0,
                        help="run the chunks in N `trato worker` processes (PostgreSQL and TRATO_REDIS_URL)")
    parser.add_argument("--pg-database", default=segments.PG_DB,
                        help="the PostgreSQL database to (re)create; another name leaves others' runs alone")
    args = parser.parse_args()
    redis_url = os.environ.get("TRATO_REDIS_URL", "")
    if args.workers and (args.db != "postgresql" or not redis_url.startswith("redis://")):
        parser.error("--workers needs --db postgresql and TRATO_REDIS_URL=redis://127.0.0.1:6379/<db>")
    segments.PG_DB = args.pg_database
    queue_name = f"trato-bench-{uuid.uuid4().hex[:8]}"
    if args.workers:
        os.environ.update(TRATO_QUEUE_NAME=queue_name, TRATO_CAMPAIGN_PARALLELISM=str(args.workers))
    print(f"generating {args.customers:,} customers on {args.db}", flush=True)
    if args.db == "sqlite":
        url = segments.prepare_sqlite(args.path, customers=args.customers, events=0, reuse=args.reuse)
    else:
        url = segments.prepare_postgresql(customers=args.customers, events=0)
    add_consents(url, args.customers, args.db)
    os.environ["TRATO_DATABASE_URL"] = url
    from trato.core import db
    from trato.core.settings import get_settings

    get_settings.cache_clear()
    db.reset_engine()
    from trato.archive import service as archive
    from trato.campaigns import service
    from trato.content import service as content
    from trato.core.channels import CHANNELS
    from trato.core.db import new_session, unit_of_work
    from trato.core.queue import huey
    from trato.delivery.channels import registry
    from trato.delivery.channels.sandbox import Sandbox, SandboxSettings

    archive.register_reproducer(content.reproduce)
    sandbox = Sandbox(SandboxSettings(keep=100))
    for channel in CHANNELS:
        registry.use(channel, sandbox)
    huey.immediate = False
    if args.workers:
        from huey.storage import RedisStorage

        huey.storage = RedisStorage(name=queue_name, url=redis_url)  # where the workers look
    communication_id, segment_id = setup()
    baseline_n = min(args.baseline, args.customers)
    print(f"bare loop (render + insert) over {baseline_n:,} customers …", flush=True)
    bare = bare_loop(communication_id, baseline_n)
    print(f"  {bare:,.0f} messages/s", flush=True)
    with unit_of_work() as s:
        campaign = service.create_campaign(s, actor="bench:author", name="Ofertas", segment_id=segment_id,
                                           communication=communication_id, channels=["email"],
                                           chunk_size=args.chunk, data={"recommendations": CATALOG})
        service.approve(s, campaign_id=campaign.id, actor="bench:reviewer")
        campaign_id = campaign.id
    processes: list[subprocess.Popen[bytes]] = []
    if args.workers:
        env = {**os.environ, "TRATO_DATABASE_URL": url, "TRATO_EMAIL_URL": "sandbox://?keep=100",
               "TRATO_LOG_LEVEL": "WARNING"}
        print(f"starting {args.workers} worker processes (queue {queue_name} in Redis) …", flush=True)
        processes = start_workers(args.workers, env)

    def memory() -> float:  # the workers' together, or this process's and its preparation pool's
        return sum(rss_mb(p.pid) for p in processes) if processes else rss_mb() + pool_rss_mb()

    start_rss = memory()
    started = time.perf_counter()
    with unit_of_work() as s:
        service.launch(s, campaign_id=campaign_id, actor="bench:author")
    launched = time.perf_counter() - started
    print(f"launched (snapshot + recipients) in {launched:.1f} s", flush=True)
    marks: list[tuple[int, float, list[float]]] = []
    next_mark = args.customers / 10
    state = "running"
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(service.run(campaign_id)))
    if not processes:
        runner.start()
    try:
        while state in ("running", "busy"):
            if processes:
                time.sleep(0.2)
                if any(p.poll() is not None for p in processes):
                    raise SystemExit("a worker exited during the campaign")
                with new_session(readonly=True) as s:
                    state = service.get_campaign(s, campaign_id).state
            else:  # the whole run in one call, as a worker runs it (chunks prepared ahead); progress read beside it
                runner.join(0.25)
                state = "running" if runner.is_alive() else (outcome[0] if outcome else "failed")
            with new_session(readonly=True) as s:
                processed = service.get_campaign(s, campaign_id).processed
            while processed >= next_mark:
                elapsed = time.perf_counter() - started
                marks.append((processed, memory(), [rss_mb(p.pid) for p in processes]))
                each = f" ({' + '.join(f'{mb:.0f}' for mb in marks[-1][2])})" if processes else ""
                print(f"  {processed:,} processed, {processed / elapsed:,.0f}/s, RSS {marks[-1][1]:.0f} MB{each}",
                      flush=True)
                next_mark += args.customers / 10
        elapsed = time.perf_counter() - started
        peaks = [rss_mb(p.pid, "VmHWM") for p in processes]
    finally:
        stop_workers(processes)
        if processes:  # the bench's queue, schedule and results, and providers' circuits and limits, in Redis
            import redis

            huey.storage.flush_all()
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"*{queue_name}*"))
            if keys:
                client.delete(*keys)
    with new_session(readonly=True) as s:
        found = service.progress(s, campaign_id=campaign_id)
    sent = found["states"].get("sent", 0)
    rate = sent / elapsed
    if processes:
        peak = sum(peaks)
        where = f"{args.workers} worker processes"
    else:  # this process's peak and its preparation pool's (alive until exit: their high-water marks)
        from trato.campaigns import ahead

        pool = list(getattr(ahead._pool, "_processes", None) or {})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + sum(rss_mb(p, "VmHWM") for p in pool)
        where = f"this process and {len(pool)} preparing ahead"
    print(f"\ncampaign {state}: {sent:,} sent of {found['total']:,} in {elapsed:.1f} s → {rate:,.0f} messages/s "
          f"end to end with {where} (target ≥ 3,300)")
    print(f"bare render + insert loop: {bare:,.0f} messages/s; ratio {rate / bare:.1%} (target ≥ 25%)")
    print(f"resident memory ({'the workers together' if processes else 'this process'}): {start_rss:.0f} MB at "
          "launch, " + ", ".join(f"{mb:.0f}" for _, mb, _ in marks) + f" MB at each tenth; peak {peak:.0f} MB"
          + (f" ({' + '.join(f'{mb:.0f}' for mb in peaks)})" if processes else ""))
    with new_session(readonly=True) as s:
        report = archive.verify(s)
    print(f"archive verify: {'ok' if report.ok else report.problem} ({report.checked:,} entries)")


if __name__ == "__main__":
    main()
