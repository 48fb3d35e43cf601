"""``trato privacy ...`` and ``trato consents ...``: privacy requests and bulk consent import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

privacy_app = typer.Typer(help="Privacy requests: export or erase everything about a person.", no_args_is_help=True)
consents_app = typer.Typer(help="Consents.", no_args_is_help=True)
console = Console()


@privacy_app.command("export")
def export(
    customer: Annotated[str, typer.Argument(help="the customer's trato id")],
    output: Annotated[Path | None, typer.Option(help="write the JSON archive here (default: standard output)")] = None,
) -> None:
    """Everything trato holds about a person, as one JSON archive (audited)."""
    from trato.core.db import unit_of_work
    from trato.policy import service

    with unit_of_work() as session:
        archive = service.export_customer(session, customer_id=customer, actor="cli")
    data = orjson.dumps(archive, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    if output is None:
        typer.echo(data.decode())
    else:
        output.write_bytes(data)
        console.print(f"archive written to {escape(str(output))}")


@privacy_app.command("erase")
def erase(
    customer: Annotated[str, typer.Argument(help="the customer's trato id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase a person's personal data everywhere; counts and hashed suppressions stay (audited)."""
    from trato.core.db import unit_of_work
    from trato.policy import service

    if not yes:
        typer.confirm(f"Erase every personal datum of {customer}? This cannot be undone", abort=True)
    with unit_of_work() as session:
        summary = service.erase_customer(session, customer_id=customer, actor="cli")
    console.print(f"erased {summary['customer_id']}: {summary['profiles']} profile(s), "
                  f"{summary['identities_removed']} identities removed, {summary['addresses_blocked']} addresses blocked")


@consents_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a CSV file of consents")],
) -> None:
    """Import consents from CSV (source "import"); re-running the same file changes nothing."""
    from trato.policy.imports import import_consents

    outcome = import_consents(path, actor="cli:import")
    console.print(f"read {outcome.read} rows: {outcome.stored} stored, {outcome.unchanged} already so, "
                  f"{len(outcome.rejected)} rejected")
    for row in outcome.rejected[:10]:
        console.print(f"  line {row.line}: [red]{escape(row.code)}[/red] {escape(row.message)}")
    if outcome.rejected:
        raise typer.Exit(1)
