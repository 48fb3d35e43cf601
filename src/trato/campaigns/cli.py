"""``trato campaigns create|preflight|test-send|send|status|pause|resume|cancel``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

campaigns_app = typer.Typer(help="Campaigns: approved communications sent to a segment, at scale.",
                            no_args_is_help=True)
console = Console()
ACTOR = "cli"
CampaignId = Annotated[str, typer.Argument(help="the campaign's id")]


@campaigns_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="a JSON file with the campaign's fields (as the API takes them)",
                                         exists=True, dir_okay=False)],
    actor: Annotated[str, typer.Option(help="who creates it (for the audit trail and the four-eyes check)")] = ACTOR,
) -> None:
    """Create a draft campaign from a JSON file and print its id."""
    from pydantic import ValidationError

    from trato.campaigns import service
    from trato.campaigns.schemas import CampaignIn
    from trato.core.db import unit_of_work
    from trato.core.errors import InvalidInput

    try:
        body = CampaignIn.model_validate(orjson.loads(file.read_bytes()))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise InvalidInput(f"{file} is not a campaign: {exc}", code="invalid_json") from None
    variants = [v.model_dump() for v in body.variants] if body.variants else None
    with unit_of_work() as session:
        campaign = service.create_campaign(session, actor=actor, variants=variants,
                                           **body.model_dump(exclude={"variants"}))
        console.print(f"created {escape(campaign.name)} ({campaign.id})")


@campaigns_app.command("approve")
def approve(campaign_id: CampaignId, actor: Annotated[str, typer.Option(help="who approves it")] = ACTOR) -> None:
    """Approve a marketing campaign (someone other than its creator)."""
    from trato.campaigns import service
    from trato.core.db import unit_of_work

    with unit_of_work() as session:
        service.approve(session, campaign_id=campaign_id, actor=actor)
    console.print(f"approved {campaign_id}")


@campaigns_app.command("preflight")
def preflight(campaign_id: CampaignId) -> None:
    """Who would receive it on which channel; who is left out or deferred and why (with samples)."""
    from trato.campaigns import service
    from trato.core.db import new_session

    with new_session(readonly=True) as session:
        found = service.preflight(session, campaign_id=campaign_id)
    table = Table("", "reason / channel", "customers", "sample")
    for channel, n in sorted(found["send"].items()):
        table.add_row("send", channel, f"{n:,}", "")
    table.add_row("holdout", "", f"{found['holdout']:,}", "")
    for kind in ("deferred", "excluded"):
        for reason, n in sorted(found[kind].items()):
            table.add_row(kind, reason, f"{n:,}", ", ".join(found["samples"].get(reason, [])))
    console.print(f"{found['total']:,} members")
    console.print(table)
    if found["approval_required"]:
        console.print("[yellow]approval required before sending[/yellow]")


@campaigns_app.command("test-send")
def test_send(
    campaign_id: CampaignId,
    customer: Annotated[list[str], typer.Option(help="a customer id to render for (repeat)")],
    seed: Annotated[list[str] | None, typer.Option(help="a seed address (repeat; default: the campaign's)")] = None,
) -> None:
    """Send each variant, rendered for the chosen customers, to the seed addresses (archived as tests)."""
    from trato.campaigns import service
    from trato.core.db import unit_of_work

    with unit_of_work() as session:
        sent = service.test_send(session, campaign_id=campaign_id, actor=ACTOR, customer_ids=list(customer),
                                 seeds=list(seed) if seed else None)
    for row in sent:
        console.print(f"{row['variant']} for {row['customer_id']} → {escape(row['seed'])} ({row['channel']}): "
                      f"{row['outcome']}" + (f" {escape(row['error'])}" if row["error"] else ""))


def _status_line(found: dict[str, Any]) -> str:
    eta = f", ETA {found['eta_seconds']} s" if found["eta_seconds"] is not None else ""
    return f"{found['state']}: {found['processed']:,}/{found['total']:,} at {found['rate']:,.0f}/s{eta}"


@campaigns_app.command("send")
def send(campaign_id: CampaignId) -> None:
    """Launch a draft (or go on with a running campaign) here, with a progress bar, chunk by chunk."""
    from trato.campaigns import service
    from trato.core.db import new_session, unit_of_work

    with unit_of_work() as session:
        if service.get_campaign(session, campaign_id).state == "draft":
            service.launch(session, campaign_id=campaign_id, actor=ACTOR)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("sending", total=None, rate="")
        while True:
            outcome = service.run(campaign_id, max_chunks=1)
            with new_session(readonly=True) as session:
                found = service.progress(session, campaign_id=campaign_id)
            bar.update(task, total=found["total"], completed=found["processed"], rate=f"{found['rate']:,.0f}/s")
            if outcome == "busy" and found["state"] == "running":
                time.sleep(0.5)  # workers hold every runner slot: show their progress
                continue
            if outcome != "running":
                break
    console.print(_status_line(found))


@campaigns_app.command("status")
def status(campaign_id: CampaignId) -> None:
    """State, progress (count, rate, ETA) and recipients per state."""
    from trato.campaigns import service
    from trato.core.db import new_session

    with new_session(readonly=True) as session:
        found = service.progress(session, campaign_id=campaign_id)
    console.print(_status_line(found))
    for state, n in sorted(found["states"].items()):
        console.print(f"  {state}: {n:,}")


def _control(action: str) -> Any:
    def command(campaign_id: CampaignId) -> None:
        from trato.campaigns import service
        from trato.core.db import unit_of_work

        with unit_of_work() as session:
            campaign = getattr(service, action)(session, campaign_id=campaign_id, actor=ACTOR)
            console.print(f"{campaign_id}: {campaign.state}")

    command.__doc__ = {"pause": "Pause after the chunk in hand.", "resume": "Go on from where it stopped.",
                       "cancel": "Stop for good; recipients not yet processed are not contacted."}[action]
    return command


for _action in ("pause", "resume", "cancel"):
    campaigns_app.command(_action)(_control(_action))
