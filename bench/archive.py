"""Archive figures: record rate against a bare insert of the same rows, and bytes per entry.

For each storage mode — "parts" (no reproducer: the rendered parts, zstd-compressed) and
"context" (a reproducer registered: only the render context, after one reproduction checked
the hash) — a fresh database gets N messages through ``archive.service.record`` (85% e-mails of
about 2 KB of personalised HTML, 15% SMS), 100 per transaction as a delivery worker would commit
them. The baseline then inserts the very rows record() stored, one INSERT each, 100 per
transaction, into an empty table of the same shape: what storing the rows costs without
hashing, compression, reproduction and the chain-head lock. Bytes per entry are the table's
size on disk, indexes included (SQLite: dbstat; PostgreSQL: pg_total_relation_size), / N.

    .venv/bin/python bench/archive.py                       # SQLite, 100,000 entries per mode
    .venv/bin/python bench/archive.py --db both --entries 20000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from jinja2 import Environment

PG_ADMIN = os.environ.get("TRATO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BATCH = 100

EMAIL = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7">
<tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="background:#ffffff;border-radius:8px">
<tr><td style="padding:24px 32px;border-bottom:1px solid #e3e6eb"><img src="https://cdn.example.com/logo.png" alt="Energía Clara" width="140" height="32"></td></tr>
<tr><td style="padding:32px;color:#1d2430;font-size:16px;line-height:24px">
<h1 style="font-size:22px;margin:0 0 16px">Hola {{ name }}, tu factura de {{ month }} ya está disponible</h1>
<p style="margin:0 0 12px">Importe: <strong>{{ amount }}</strong>. Fecha de cargo: {{ due }} en la cuenta terminada en {{ iban_tail }}.</p>
<p style="margin:0 0 12px">Contrato {{ contract }} · Suministro en {{ street }}, {{ city }}.</p>
<p style="margin:0 0 24px">Consumo del periodo: {{ kwh }} kWh ({{ trend }} respecto al mes anterior).</p>
<p style="margin:0 0 24px"><a href="https://clientes.example.com/facturas/{{ invoice }}" style="background:#0b5cff;color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none">Ver factura {{ invoice }}</a></p>
<p style="margin:0;color:#5b6473;font-size:13px">Si tienes dudas, llámanos al 900 123 456 de lunes a viernes de 8:00 a 20:00.</p>
</td></tr>
<tr><td style="padding:16px 32px;color:#8a93a3;font-size:12px;border-top:1px solid #e3e6eb">Energía Clara S.A. · Calle de Alcalá 100, 28009 Madrid · CIF A12345678.
Recibes este mensaje porque tienes un contrato de suministro con nosotros. Gestiona tus preferencias en https://clientes.example.com/preferencias.</td></tr>
</table></td></tr></table></body></html>""")
SMS = "Energia Clara: {name}, tu factura {invoice} de {amount} se cargara el {due}. Detalle: https://ec.example.com/f/{invoice}"
NAMES = ["Ana", "Bruno", "Carmen", "David", "Elena", "Fernando", "Lucía", "Mateo", "Sofía", "Javier"]
STREETS = ["Calle Mayor", "Avenida de América", "Calle del Prado", "Paseo de Gracia", "Calle Larios"]
CITIES = ["Madrid", "Barcelona", "Sevilla", "Valencia", "Málaga", "Bilbao"]


def render(*, version_id: str, channel: str, language: str, context: dict[str, Any]) -> dict[str, str | bytes]:
    if channel == "sms":
        return {"text": SMS.format(**context)}
    subject = f"Tu factura de {context['month']}: {context['amount']}"
    html = EMAIL.render(lang=language, subject=subject, **context)
    text = (f"Hola {context['name']}, tu factura {context['invoice']} de {context['month']} "
            f"({context['amount']}) ya está disponible.")
    return {"subject": subject, "html": html, "text": text}


def reproduce(session: Any, *, version_id: str, channel: str, language: str, context: dict[str, Any]) -> dict[str, str | bytes]:
    return render(version_id=version_id, channel=channel, language=language, context=context)


def workload(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    messages = []
    for i in range(n):
        name = rng.choice(NAMES)
        context = {
            "name": name, "month": rng.choice(["octubre", "noviembre"]), "invoice": f"F-{2026_000_000 + i}",
            "amount": f"{rng.randint(20, 300)},{rng.randint(0, 99):02d} €", "due": f"{rng.randint(1, 28)}/12/2026",
            "iban_tail": f"{rng.randint(0, 9999):04d}", "contract": f"C-{rng.randint(10**7, 10**8)}",
            "street": f"{rng.choice(STREETS)} {rng.randint(1, 200)}", "city": rng.choice(CITIES),
            "kwh": rng.randint(80, 900), "trend": f"{rng.choice(['+', '-'])}{rng.randint(0, 30)} %",
        }
        channel = "sms" if rng.random() < 0.15 else "email"
        messages.append({
            "customer_id": f"cus_{rng.randint(0, n // 3):012d}", "communication_id": "com_INVOICE_READY",
            "version_id": "ver_3", "channel": channel, "language": "es",
            "recipient": f"+346{rng.randint(10**7, 10**8 - 1)}" if channel == "sms" else
            f"{name.lower()}.{i}@example.com",
            "render_context": context, "message_id": f"msg_{i:09d}",
            "decision": {"allowed": True, "channel": channel, "purpose": "request_payment",
                         "reasons": [{"code": "consent", "basis": "contract"}, {"code": "quiet_hours", "ok": True}]},
        })
    return messages


@dataclass
class Run:
    mode: str
    entries: int
    record_seconds: float
    record_cpu: float
    baseline_seconds: float
    baseline_cpu: float
    table_bytes: int
    raw_bytes: int


def fresh_database(db: str, tmp: Path, label: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{tmp / f'{label}.db'}"
    name = f"trato_bench_archive_{label}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def use_database(url: str) -> None:
    os.environ["TRATO_DATABASE_URL"] = url
    os.environ.setdefault("TRATO_SECRET_KEY", "bench-secret-" + "x" * 32)
    from trato.core import db, migrate
    from trato.core.settings import get_settings

    get_settings.cache_clear()
    db.reset_engine()
    migrate.upgrade()


def table_bytes(engine: Any, table: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return int(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar())
        names = [table] + [r[0] for r in conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"), {"t": table})]
        return int(sum(conn.execute(text("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = :n"),
                                    {"n": n}).scalar() for n in names))


def run_mode(db: str, tmp: Path, mode: str, messages: list[dict[str, Any]]) -> Run:
    from sqlalchemy import MetaData, insert, select

    from trato.archive import chain, service
    from trato.archive.models import ArchivedMessage
    from trato.core.db import get_engine, new_session

    url = fresh_database(db, tmp, mode)
    try:
        use_database(url)
        service.register_reproducer(reproduce if mode == "context" else None)
        raw = 0
        started, cpu = time.perf_counter(), time.process_time()
        render_cpu = 0.0
        session = new_session()
        for i, message in enumerate(messages, 1):
            r0 = time.process_time()
            parts = render(version_id=message["version_id"], channel=message["channel"],
                           language=message["language"], context=message["render_context"])
            raw += len(chain.encode_parts(parts))
            render_cpu += time.process_time() - r0
            service.record(session, parts=parts, **message)
            if i % BATCH == 0:
                session.commit()
        session.commit()
        session.close()
        # What delivery's own render costs is not the archive's: it is taken out of both clocks.
        record_seconds = time.perf_counter() - started - render_cpu
        record_cpu = time.process_time() - cpu - render_cpu
        engine = get_engine()
        stored_bytes = table_bytes(engine, "archived_messages")

        # Baseline: the same rows, bare INSERTs into a table of the same shape, 100 per transaction.
        copy = ArchivedMessage.__table__.to_metadata(MetaData(), name="bench_archive_copy")
        for index in list(copy.indexes):
            index.name = f"bench_{index.name}"
        for constraint in copy.constraints:
            if constraint.name:
                constraint.name = f"bench_{constraint.name}"
        copy.create(engine)
        source = ArchivedMessage.__table__
        baseline_seconds = baseline_cpu = 0.0
        last = 0
        with engine.connect() as reader, engine.connect() as writer:
            while True:
                rows = [dict(r) for r in reader.execute(
                    select(source).where(source.c.sequence > last).order_by(source.c.sequence).limit(BATCH)
                ).mappings()]
                reader.rollback()
                if not rows:
                    break
                last = rows[-1]["sequence"]
                t0, c0 = time.perf_counter(), time.process_time()
                with writer.begin():
                    for row in rows:
                        writer.execute(insert(copy), row)
                baseline_seconds += time.perf_counter() - t0
                baseline_cpu += time.process_time() - c0
        report = None
        with new_session(readonly=True) as s:
            report = service.verify(s)
        assert report.ok and report.checked == len(messages), report
        return Run(mode, len(messages), record_seconds, record_cpu, baseline_seconds, baseline_cpu, stored_bytes, raw)
    finally:
        from trato.core import db as core_db

        service.register_reproducer(None)
        core_db.reset_engine()
        drop_database(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    messages = workload(args.entries)
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"{args.entries:,} messages per mode ({sum(m['channel'] == 'sms' for m in messages):,} SMS), "
          f"{BATCH} per transaction")
    with tempfile.TemporaryDirectory(prefix="trato-bench-archive-") as tmp:
        for db in databases:
            for mode in ("parts", "context"):
                run = run_mode(db, Path(tmp), mode, messages)
                rate = run.entries / run.record_seconds
                base = run.entries / run.baseline_seconds
                print(f"{db:10} {mode:7}  record {rate:7,.0f}/s  bare insert {base:7,.0f}/s  ratio {rate / base:4.2f}  "
                      f"| CPU of this process {run.record_cpu / run.entries * 1e6:5,.0f} vs "
                      f"{run.baseline_cpu / run.entries * 1e6:4,.0f} us/entry  "
                      f"| {run.table_bytes / run.entries:5,.0f} bytes/entry on disk "
                      f"({run.table_bytes / run.raw_bytes:.0%} of the {run.raw_bytes / run.entries:,.0f} bytes rendered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
