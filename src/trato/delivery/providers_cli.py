"""``trato providers …``: the delivery providers stored in the database (those written in the
TRATO_*_URL settings are listed too, and changed there)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

providers_app = typer.Typer(help="Delivery providers (SMTP, SMS, WhatsApp… accounts) and their failover order.",
                            no_args_is_help=True)
console = Console()


@providers_app.command("list")
def list_() -> None:
    """Every provider, per channel in failover order, with its circuit's state (secrets masked)."""
    from trato.core.db import new_session
    from trato.delivery import providers

    with new_session(readonly=True) as session:
        views = providers.list_providers(session)
    if not views:
        console.print("no providers configured: every channel goes to the sandbox")
    for v in views:
        origin = v.setting or f"database, priority {v.priority}"
        state = "" if v.enabled else " [yellow]disabled[/yellow]"
        rate = f", {v.max_per_second:g}/s" if v.max_per_second else ""
        console.print(f"[bold]{escape(v.name)}[/bold] {v.adapter} → {', '.join(v.channels)} ({origin}{rate}), "
                      f"circuit {v.circuit['state']}{state}", soft_wrap=True)
        shown = ", ".join(f"{k}={val}" for k, val in v.settings.items() if val not in (None, ""))
        if shown:
            console.print(f"  {escape(shown)}", soft_wrap=True)


@providers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the provider's name, e.g. smtp-backup (its /hooks/NAME/ path)")],
    url: Annotated[str, typer.Argument(help="its settings as one URL, e.g. smtp://user:pass@host:587?tls=starttls")],
    channel: Annotated[list[str] | None, typer.Option(help="a channel it sends (repeat); default: all its adapter's")]
    = None,
    priority: Annotated[int, typer.Option(min=0, max=10_000, help="lower goes first among stored providers")] = 100,
    rate: Annotated[float | None, typer.Option(help="messages a second at most (overrides the adapter's limit)")]
    = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="store it without using it yet")] = False,
) -> None:
    """Store a provider (its settings validated, secrets sealed); every worker uses it at its next message."""
    from trato.core.db import unit_of_work
    from trato.delivery import providers

    with unit_of_work() as session:
        row = providers.add_provider(session, actor="cli", name=name, url=url, channels=channel or None,
                                     priority=priority, enabled=not disabled, max_per_second=rate)
        console.print(f"provider [bold]{escape(row.name)}[/bold] ({row.adapter}) sends {', '.join(row.channels)}")


def _set_enabled(name: str, enabled: bool) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import providers

    with unit_of_work() as session:
        providers.update_provider(session, actor="cli", name=name, enabled=enabled)
    console.print(f"provider [bold]{escape(name)}[/bold] {'enabled' if enabled else 'disabled'}")


@providers_app.command("disable")
def disable(name: str) -> None:
    """Stop sending through a stored provider (kept, with its settings)."""
    _set_enabled(name, False)


@providers_app.command("enable")
def enable(name: str) -> None:
    """Send through a stored provider again."""
    _set_enabled(name, True)


@providers_app.command("remove")
def remove(name: str) -> None:
    """Delete a stored provider."""
    from trato.core.db import unit_of_work
    from trato.delivery import providers

    with unit_of_work() as session:
        providers.remove_provider(session, actor="cli", name=name)
    console.print(f"provider [bold]{escape(name)}[/bold] removed")


@providers_app.command("test")
def test(name: str) -> None:
    """Test a provider's connection and credentials without sending anything; exit status 1 if it fails."""
    from trato.core.db import new_session
    from trato.delivery import providers

    with new_session(readonly=True) as session:
        result = providers.check_provider(session, name=name)
    colour = "green" if result.ok else "red"
    console.print(f"[{colour}]{'ok' if result.ok else 'failed'}[/{colour}] {escape(result.detail)}")
    if not result.ok:
        raise typer.Exit(1)
