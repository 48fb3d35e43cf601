"""``trato mail receive``: one raw mail on standard input — a bounce, a complaint, a reply — for an
MTA's pipe transport, e.g. in Postfix's master.cf::

    trato-mail unix - n n - - pipe
      flags=q user=trato argv=/opt/trato/bin/trato mail receive --recipient ${original_recipient}

Exit codes follow sysexits(3), which MTAs understand: 0 done (also for mail there is nothing to
do with), 65 (EX_DATAERR) not a mail, 75 (EX_TEMPFAIL) the database could not be reached — the MTA
keeps the mail and tries again, as it does for any other failure —, 78 (EX_CONFIG) a wrong setting.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

mail_app = typer.Typer(help="Mail that comes back: bounces, complaints and replies.", no_args_is_help=True)
err = Console(stderr=True)

EX_OK, EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 0, 65, 75, 78
MAX_BYTES = 25 * 1024 * 1024


@mail_app.command("receive")
def receive(
    provider: Annotated[str, typer.Option(help="the configured e-mail provider the mail came back to")] = "smtp",
    recipient: Annotated[str | None, typer.Option(
        help="the envelope recipient (e.g. bounces+msg_…@…); Postfix's local delivery sets ORIGINAL_RECIPIENT",
        envvar=["ORIGINAL_RECIPIENT", "RECIPIENT"], show_envvar=False)] = None,
) -> None:
    """Read one raw mail from standard input and apply it: bounce, complaint, reply or nothing."""
    from sqlalchemy.exc import OperationalError

    from trato.core.errors import ConfigurationError, TratoError

    raw = sys.stdin.buffer.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        err.print(f"the mail is larger than {MAX_BYTES} bytes")
        raise typer.Exit(EX_DATAERR)
    try:
        from trato.app import connect_domains
        from trato.core.db import unit_of_work
        from trato.core.settings import get_settings
        from trato.delivery import mailin

        get_settings().resolved_secret_key()
        connect_domains()
        with unit_of_work() as session:
            outcome = mailin.receive(session, raw, provider=provider, envelope_recipient=recipient)
    except ConfigurationError as exc:
        err.print(f"configuration error: {escape(exc.message)}")
        raise typer.Exit(EX_CONFIG) from None
    except TratoError as exc:  # e.g. an empty or unreadable mail
        err.print(f"{exc.code}: {escape(exc.message)}")
        raise typer.Exit(EX_DATAERR) from None
    except OperationalError as exc:  # the database is down or locked: the MTA keeps the mail and retries
        err.print(f"database unavailable, try again later: {type(exc.orig or exc).__name__}")
        raise typer.Exit(EX_TEMPFAIL) from None
    except Exception as exc:  # a bug must not lose the mail: the MTA keeps it and tries again
        err.print(f"could not apply the mail ({type(exc).__name__}); the MTA should try again")
        raise typer.Exit(EX_TEMPFAIL) from None
    typer.echo(f"{outcome.action} {outcome.message_id or '-'} {outcome.detail}".rstrip())


@mail_app.command("poll")
def poll() -> None:
    """Fetch the bounce mailbox (TRATO_MAIL_POLL_URL, POP3) once and apply every mail in it."""
    from trato.app import connect_domains
    from trato.core.errors import ConfigurationError
    from trato.core.settings import get_settings
    from trato.delivery import mailpoll

    try:
        get_settings().resolved_secret_key()
        settings = mailpoll.configured()
        if settings is None:
            raise ConfigurationError("TRATO_MAIL_POLL_URL", "is not set: there is no bounce mailbox to poll")
        connect_domains()
        report = mailpoll.poll(settings)
    except ConfigurationError as exc:
        err.print(f"configuration error: {escape(exc.message)}")
        raise typer.Exit(EX_CONFIG) from None
    applied = ", ".join(f"{action} {n}" for action, n in sorted(report.applied.items())) or "nothing"
    typer.echo(f"fetched {report.fetched}: {applied}; unreadable {report.unreadable}; left {report.left}")
    if report.error:
        err.print(escape(report.error))
        raise typer.Exit(EX_TEMPFAIL)
