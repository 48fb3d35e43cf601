"""The ``trato`` command: serve, migrate, demo data, sources, tokens and bulk import."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trato.core.errors import ConfigurationError, TratoError

app = typer.Typer(help="trato: customer memory and communications.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sources_app = typer.Typer(help="Systems that send events (write keys).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
import_app = typer.Typer(help="Bulk import from CSV or JSON Lines files.", no_args_is_help=True)
archive_app = typer.Typer(help="The archive of every message sent.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sources_app, name="sources")
app.add_typer(tokens_app, name="tokens")
app.add_typer(import_app, name="import")
app.add_typer(archive_app, name="archive")
# The contact policy's commands (trato privacy export|erase, trato consents import).
from trato.policy.cli import consents_app, privacy_app  # noqa: E402

app.add_typer(privacy_app, name="privacy", callback=lambda: _settings())
app.add_typer(consents_app, name="consents", callback=lambda: _settings())
# Print-house batches of printed letters (trato letters drop|list|import-status).
from trato.delivery.cli import letters_app  # noqa: E402

app.add_typer(letters_app, name="letters", callback=lambda: _settings())
# Mail that comes back to the e-mail provider (trato mail receive, for an MTA's pipe).
from trato.delivery.mail_cli import mail_app  # noqa: E402

app.add_typer(mail_app, name="mail")
# Segments (trato segments list|count|create|export).
from trato.audiences.cli import segments_app  # noqa: E402

app.add_typer(segments_app, name="segments", callback=lambda: _settings())
# Delivery providers (trato providers list|add|test|remove|disable|enable).
from trato.delivery.providers_cli import providers_app  # noqa: E402

app.add_typer(providers_app, name="providers", callback=lambda: _settings())
# Campaigns (trato campaigns create|preflight|test-send|send|status|pause|resume|cancel).
from trato.campaigns.cli import campaigns_app  # noqa: E402

app.add_typer(campaigns_app, name="campaigns", callback=lambda: _settings())

console = Console()
err = Console(stderr=True)
DEMO_CREDENTIALS = Path(".trato_demo.json")


def _settings():  # type: ignore[no-untyped-def]
    from trato.core.settings import get_settings

    settings = get_settings()
    settings.resolved_secret_key()
    return settings


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply schema migrations up to REVISION (default: the newest)."""
    _settings()
    from trato.core import migrate

    migrate.upgrade(revision)
    console.print(f"[green]database at {revision}[/green]")


@sources_app.command("create")
def sources_create(
    name: str,
    channel: Annotated[str | None, typer.Option(help="default channel of its events, e.g. web")] = None,
    department: Annotated[str | None, typer.Option(help="default department, e.g. sales")] = None,
) -> None:
    """Create a source and print its write key (shown once)."""
    _settings()
    from trato.core.db import unit_of_work
    from trato.ingest import service

    with unit_of_work() as session:
        source, key = service.create_source(
            session, name=name, actor="cli", default_channel=channel, default_department=department
        )
    console.print(f"source [bold]{source.name}[/bold] ({source.id})")
    console.print(f"write key: [bold]{key}[/bold]")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="who or what uses the token")],
    role: Annotated[str, typer.Option(help="admin, editor or viewer")] = "viewer",
) -> None:
    """Create an API token and print it (shown once)."""
    _settings()
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as session:
        token, secret = service.create_token(session, name=name, role=role, actor="cli")
    console.print(f"token [bold]{token.name}[/bold] ({token.id}, role {token.role})")
    console.print(f"secret: [bold]{secret}[/bold]")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="how many customers to generate")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same company")] = 7,
) -> None:
    """Load a realistic demo company (customers in Spain, Mexico, the US and the UK, a year of events)."""
    _settings()
    from trato.demo import service

    credentials = service.load_demo(customers=customers, seed=seed, progress=console)
    DEMO_CREDENTIALS.write_text(json.dumps(credentials, indent=2))
    os.chmod(DEMO_CREDENTIALS, 0o600)
    _print_credentials(credentials)


def _print_credentials(credentials: dict[str, str]) -> None:
    settings = _settings()
    console.print(f"\n  console:      [bold]{settings.base_url}/[/bold]")
    for label, key in (("admin user", "admin_email"), ("password", "admin_password"),
                       ("API token", "api_token"), ("write key", "write_key")):
        if key in credentials:
            console.print(f"  {label + ':':13} [bold]{credentials[key]}[/bold]")


@app.command()
def setup(
    demo_customers: Annotated[int, typer.Option(help="demo customers to load into an empty database")] = 10_000,
) -> None:
    """Migrate, load the demo data into an empty database, print how to sign in (used by make run)."""
    _settings()
    from trato.core import migrate

    empty = migrate.is_empty()
    migrate.upgrade()
    if empty or not DEMO_CREDENTIALS.exists():
        from trato.core.db import new_session
        from trato.customers.models import Customer

        with new_session(readonly=True) as session:
            has_customers = session.query(Customer.id).limit(1).first() is not None
        if not has_customers:
            demo(customers=demo_customers, seed=7)
            return
    if DEMO_CREDENTIALS.exists():
        _print_credentials(json.loads(DEMO_CREDENTIALS.read_text()))


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="do not run queued work in this process")] = False,
    no_folder: Annotated[bool, typer.Option(
        "--no-folder", help="only accept tracking calls; `trato fold` elsewhere folds them into the customer memory",
    )] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="server processes sharing the port")] = 1,
) -> None:
    """Serve the API, the tracking endpoints and the console; a folder process moves tracked calls
    into the customer memory."""
    import subprocess

    import uvicorn

    os.environ["TRATO_IN_PROCESS_WORKER"] = "0" if no_worker else "1"
    os.environ["TRATO_INGEST_FOLDER"] = "false"  # not the app's own folder thread: the process below folds
    from trato.core.settings import get_settings

    get_settings.cache_clear()
    settings = _settings()
    folder = None
    if not no_folder:
        # The lowest CPU priority: under a burst the tracking edge keeps a core and the folder catches up after.
        folder = subprocess.Popen([sys.executable, "-m", "trato", "fold", "--nice", "19", "--parent", str(os.getpid())])
    console.print(f"trato on [bold]http://{host}:{port}/[/bold] ({'SQLite' if settings.is_sqlite else 'PostgreSQL'})")
    try:
        uvicorn.run("trato.app:create_server", factory=True, host=host, port=port, log_level="warning",
                    http="httptools", loop="uvloop", access_log=False, workers=workers)
    finally:
        if folder is not None:
            folder.terminate()  # it finishes the fold in progress
            folder.wait(60)


@app.command()
def fold(
    nice: Annotated[int, typer.Option(min=0, max=19, help="lower this process's CPU priority by this much")] = 0,
    parent: Annotated[int | None, typer.Option(hidden=True, help="stop when this process is gone")] = None,
) -> None:
    """Fold tracked calls from the ingest inbox into the customer memory until stopped (several may run)."""
    _settings()
    from trato.ingest.folder import run_forever

    if nice:
        os.nice(nice)
    run_forever(parent=parent)


@app.command()
def worker(workers: Annotated[int, typer.Option(help="worker threads")] = 4) -> None:
    """Run queued work in this process (scale-out: with TRATO_REDIS_URL, beside `serve --no-worker`)."""
    _settings()
    from trato.delivery.channels import registry

    from trato.app import connect_domains

    registry.check_configuration()  # a bad TRATO_*_URL stops the worker naming it
    connect_domains()  # messages archived as their render context are rendered again to be sent
    from trato.campaigns.tasks import queue_running
    from trato.core.queue import run_worker

    try:
        queue_running()  # campaigns whose runs a stopped worker took with it go on now, not at the next sweep
    except Exception as exc:  # the database not reachable yet: the sweep queues them in a few minutes
        from rich.markup import escape

        err.print(f"[yellow]running campaigns not queued at start: {escape(str(exc))}[/yellow]")

    run_worker(workers)


@import_app.command("customers")
def import_customers(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a .csv or .jsonl file")],
    report: Annotated[Path | None, typer.Option(help="write rejected rows to this CSV")] = None,
) -> None:
    """Import customers (traits and identities); re-running the same file changes nothing."""
    _settings()
    from trato.ingest import importer

    outcome = importer.import_customers(path, progress=console)
    _import_summary(outcome, report)


@import_app.command("events")
def import_events(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a .jsonl file of Segment calls")],
    source: Annotated[str, typer.Option(help="name of the source the events come from")] = "import",
    report: Annotated[Path | None, typer.Option(help="write rejected rows to this CSV")] = None,
) -> None:
    """Import events (Segment calls, one JSON object a line); idempotent by messageId."""
    _settings()
    from trato.ingest import importer

    outcome = importer.import_events(path, source_name=source, progress=console)
    _import_summary(outcome, report)


def _import_summary(outcome, report: Path | None) -> None:  # type: ignore[no-untyped-def]
    from rich.markup import escape

    from trato.ingest import importer

    console.print(
        f"read {outcome.read} rows: {outcome.stored} stored, {outcome.unchanged} already there, "
        f"{len(outcome.rejected)} rejected"
    )
    # Messages quote the file's own text, which must not be read as rich markup.
    for row in outcome.rejected[:10]:
        console.print(f"  line {row.line}: [red]{escape(row.code)}[/red] {escape(row.message)}")
    if len(outcome.rejected) > 10 and report is None:
        console.print(f"  ... and {len(outcome.rejected) - 10} more; --report FILE writes them all")
    if report is not None:
        importer.write_report(outcome.rejected, report)
        console.print(f"rejected rows written to {escape(str(report))}")
    if outcome.rejected:
        raise typer.Exit(1)


@archive_app.command("verify")
def archive_verify(
    reproduce: Annotated[bool, typer.Option(
        "--reproduce", help="also re-render messages kept as their render context and compare the hashes")] = False,
) -> None:
    """Check the archive's hash chain; exit status 1 and the first broken link when it is broken."""
    _settings()
    from rich.markup import escape

    from trato.app import connect_domains
    from trato.archive import service
    from trato.core.db import new_session

    connect_domains()
    with console.status("verifying the archive's hash chain…"), new_session(readonly=True) as session:
        report = service.verify(session, reproduce=reproduce)
    console.print(f"checked {report.checked:,} entries ({report.erased:,} erased at a customer's request); "
                  f"chain head at {report.head_sequence:,}")
    if report.ok:
        console.print("[green]the archive is intact[/green]")
        return
    problem = report.problem
    assert problem is not None
    console.print(f"[red bold]broken[/red bold] at entry {problem.sequence if problem.sequence is not None else '-'}"
                  f" ({escape(problem.entry_id or 'no entry')}): [red]{problem.code}[/red] {escape(problem.message)}")
    raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        err.print(f"[red]configuration error[/red] {exc.message}")
        sys.exit(2)
    except TratoError as exc:
        err.print(f"[red]{exc.code}[/red] {exc.message}")
        sys.exit(1)
