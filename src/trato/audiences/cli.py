"""``trato segments list|count|create|export``: segments from the command line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

segments_app = typer.Typer(help="Segments: audiences described by conditions, or static lists.", no_args_is_help=True)
console = Console()


@segments_app.command("list")
def list_segments() -> None:
    """Every segment with its id, kind and member count now."""
    from trato.audiences import service
    from trato.core.db import new_session

    table = Table("id", "name", "kind", "customers")
    with new_session(readonly=True) as session:
        for segment in service.list_segments(session):
            table.add_row(segment.id, escape(segment.name), segment.kind,
                          f"{service.count(session, segment_id=segment.id):,}")
    console.print(table)


@segments_app.command("count")
def count(segment_id: Annotated[str, typer.Argument(help="the segment's id")]) -> None:
    """How many customers are in the segment now."""
    from trato.audiences import service
    from trato.core.db import new_session

    with new_session(readonly=True) as session:
        typer.echo(service.count(session, segment_id=segment_id))


@segments_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help='a JSON file: {"name": ..., "definition": {...}} (or kind "static")',
                                         exists=True, dir_okay=False)],
) -> None:
    """Create a segment from a JSON file and print its id and count."""
    from trato.audiences import service
    from trato.core.db import unit_of_work
    from trato.core.errors import InvalidInput

    try:
        data = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{file} is not JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise InvalidInput(f'{file} must hold an object with a "name" and a "definition"', code="invalid_json")
    with unit_of_work() as session:
        segment = service.create_segment(session, name=data["name"], description=str(data.get("description", "")),
                                         kind=str(data.get("kind", "dynamic")), definition=data.get("definition"),
                                         actor="cli")
        members = service.count(session, segment_id=segment.id)
    console.print(f"segment [bold]{escape(segment.name)}[/bold] ({segment.id}): {members:,} customers")


@segments_app.command("export")
def export(
    segment_id: Annotated[str, typer.Argument(help="the segment's id")],
    output: Annotated[Path | None, typer.Option(help="write the CSV here (default: standard output)")] = None,
) -> None:
    """The segment's members as CSV (id, first_name, last_name, email), streamed in chunks."""
    from sqlalchemy import select

    from trato.audiences import service
    from trato.core.csvsafe import safe_cell
    from trato.core.db import new_session
    from trato.customers.models import Customer

    target = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.writer(target)
        writer.writerow(["id", "first_name", "last_name", "email"])
        written = 0
        with new_session(readonly=True) as session, new_session(readonly=True) as lookups:
            for part in service.stream_members(session, segment_id=segment_id, chunk_size=2000):
                rows = {r.id: r for r in lookups.execute(select(
                    Customer.id, Customer.first_name, Customer.last_name, Customer.email).where(Customer.id.in_(part)))}
                for cid in part:
                    r = rows[cid]
                    writer.writerow([r.id, safe_cell(r.first_name), safe_cell(r.last_name), safe_cell(r.email)])
                written += len(part)
    finally:
        if output:
            target.close()
    if output:
        console.print(f"{written:,} customers written to {escape(str(output))}")
