"""``trato letters ...``: print-house batches — list them, close and drop them now, and read the
print house's return file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

letters_app = typer.Typer(help="Printed letters: print-house batches.", no_args_is_help=True)
console = Console()


def _print_house():  # type: ignore[no-untyped-def]
    from trato.core.errors import ConfigurationError
    from trato.delivery.channels import registry
    from trato.delivery.channels.letter import PrintHouse

    adapter = registry.adapter_for("letter")
    if not isinstance(adapter, PrintHouse):
        raise ConfigurationError("TRATO_CHANNEL_PROVIDERS", "letters are not sent through a print house "
                                 "(letter=printhouse); there is nothing to drop")
    return adapter


@letters_app.command("drop")
def drop(
    now: Annotated[bool, typer.Option("--now", help="close every open batch first, full or not")] = False,
) -> None:
    """Close the batches that are full or past the cut-off and drop every closed one to the print house."""
    report = _print_house().run(close_all=now)
    for batch_id in report.dropped:
        console.print(f"dropped {escape(batch_id)}")
    for batch_id, error in report.failed.items():
        console.print(f"[red]not dropped[/red] {escape(batch_id)}: {escape(error)} (tried again on the next run)")
    console.print(f"{len(report.closed)} closed, {len(report.dropped)} dropped, {len(report.failed)} failed")
    if report.failed:
        raise typer.Exit(1)


@letters_app.command("list")
def list_batches(
    state: Annotated[str | None, typer.Option(help="open, closed or dropped")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
) -> None:
    """The print-house batches, newest first."""
    from trato.core.db import new_session
    from trato.delivery import letters

    with new_session(readonly=True) as session:
        found = letters.list_batches(session, state=state, limit=limit)
    if not found:
        console.print("no letter batches")
    for b in found:  # one line per batch, so the list can be read by scripts too
        dropped = f" dropped {b.dropped_at.isoformat(timespec='seconds')} to {b.location}" if b.dropped_at else ""
        error = f" [red]{escape(b.last_error)}[/red]" if b.last_error and b.state == "closed" else ""
        console.print(f"{b.id}\t{escape(b.provider)}\t{b.state}\t{b.item_count} letters\t{b.page_count} pages\t"
                      f"opened {b.created_at.isoformat(timespec='seconds')}{escape(dropped)}{error}", soft_wrap=True)


@letters_app.command("import-status")
def import_status(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="the print house's CSV: item, status, date, reason")],
) -> None:
    """Apply the print house's return file: delivered, returned or undeliverable (a hard bounce), failed."""
    from trato.core.db import unit_of_work
    from trato.delivery import letters

    with path.open(newline="", encoding="utf-8-sig") as handle, unit_of_work() as session:
        reader = csv.DictReader(handle)
        missing = {"item", "status"} - set(reader.fieldnames or [])
        if missing:
            raise letters.InvalidReturnFile(f"the file needs the columns {', '.join(sorted(missing))}")
        report = letters.import_status(session, rows=reader)
    console.print(f"{report.applied} applied, {report.unchanged} unchanged, {len(report.unknown)} unknown")
    for item in report.unknown[:20]:
        console.print(f"[yellow]unknown letter[/yellow] {escape(item)}")
