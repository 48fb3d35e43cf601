"""Policy decisions per second in batch mode (``decide_many`` over prepared customers, no SQL),
beside a bare Python loop over the same prepared data in the same run.

    .venv/bin/python bench/policy.py [--customers 100000] [--seed 7] [--repeat 3] [--db-customers 2000]

With ``--db-customers N`` (default 0: skipped) it also measures the path with SQL on a fresh
SQLite database in a temporary directory: ``decide()`` one customer at a time (each its own
transaction, as the API and transactional sends do) and ``prepare_contexts`` + ``decide_many``
over the same N customers (as a campaign does).

The customers are synthetic but shaped like a campaign audience: four time zones (so that at the
chosen instant some are in quiet hours), 0-4 identities-derived channels, consents granted,
denied, pending or missing, a few suppressions, up to five sends in the last week (the default
3/7 d marketing cap and a 1/day e-mail cap apply), some with a preferred channel.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from trato.policy.rules import (
    ActiveSuppression, CapRule, ConsentState, Contact, CustomerContext, PolicyConfig,
)
from trato.policy.service import decide_many

ZONES = ("Europe/Madrid", "Europe/London", "America/New_York", "America/Mexico_City")
CHANNELS = ("email", "sms", "whatsapp", "push")
AT = datetime(2026, 6, 10, 19, 30, tzinfo=UTC)  # 21:30 Madrid (quiet), afternoon in the Americas

CONFIG = PolicyConfig(
    requires_consent={"marketing": True, "service": False, "transactional": False},
    topics={"marketing": frozenset({"newsletter", "offers"}), "service": frozenset(), "transactional": frozenset()},
    quiet={("marketing", "*"): (8 * 60, 21 * 60, False)},
    caps=(CapRule("all-marketing", 3, timedelta(days=7), frozenset({"marketing"})),
          CapRule("email-daily", 1, timedelta(days=1), None, "email")),
)


def population(n: int, seed: int) -> list[CustomerContext]:
    rng = random.Random(seed)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    people = []
    for i in range(n):
        reachable = frozenset(c for c in CHANNELS if rng.random() < 0.7)
        consents = {}
        for channel in CHANNELS:
            state = rng.choices([None, "granted", "denied", "pending"], [30, 55, 12, 3])[0]
            if state:
                consents[(channel, "marketing", "")] = ConsentState(state, "form", since)
        if rng.random() < 0.1:
            consents[("email", "marketing", "offers")] = ConsentState("denied", "preference_center", since)
        suppressions = (ActiveSuppression("hard_bounce", "email", None, None),) if rng.random() < 0.03 else ()
        contacts = tuple(sorted(
            (Contact(AT - timedelta(hours=rng.randint(1, 24 * 7)), rng.choice(CHANNELS), "marketing", "c")
             for _ in range(rng.randint(0, 5))), key=lambda c: c.sent_at))
        people.append(CustomerContext(
            f"cus_{i}", rng.choice(ZONES), reachable, consents, suppressions, contacts,
            preferred_channel=rng.choice([None, None, None, *CHANNELS]),
        ))
    return people


def bare_loop(people: list[CustomerContext]) -> list[tuple[str, bool, int]]:
    """The floor: visit each prepared customer and read what a decision reads, deciding nothing."""
    out = []
    for ctx in people:
        consent = ctx.consents.get(("email", "marketing", ""))
        out.append((ctx.customer_id, "email" in ctx.reachable and consent is not None, len(ctx.contacts)))
    return out


def database_path(n: int, seed: int, in_memory: float) -> None:
    """decide() per customer with SQL, and prepare_contexts + decide_many, on a fresh SQLite file."""
    import os
    import tempfile

    directory = tempfile.mkdtemp(prefix="trato-bench-policy-")
    os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{directory}/bench.db"
    os.environ.setdefault("TRATO_SECRET_KEY", "bench-secret-key-" + "x" * 32)
    from trato.core import migrate
    from trato.core.db import unit_of_work
    from trato.core.settings import get_settings
    from trato.customers import service as customers
    from trato.policy import service

    get_settings.cache_clear()
    migrate.upgrade()
    rng = random.Random(seed)
    ids = []
    with unit_of_work() as session:
        for i in range(n):
            cid = customers.create_customer(session, traits={"timezone": rng.choice(ZONES)}, actor="bench",
                                            identities=[("email", f"p{i}@example.com"), ("phone", f"+3461{i:07d}")]).id
            ids.append(cid)
            if rng.random() < 0.6:
                service.set_consent(session, customer_id=cid, channel=rng.choice(["email", "sms"]),
                                    purpose="marketing", state="granted", source="import", actor="bench")
    channels = ["email", "sms"]
    from sqlalchemy import event

    from trato.core.db import get_engine

    statements = []
    listener = lambda *args: statements.append(1)  # noqa: E731
    with unit_of_work() as session:  # the first decision reads the configuration
        service.load_config(session)
    event.listen(get_engine(), "before_cursor_execute", listener)
    with unit_of_work() as session:
        service.decide(session, customer_id=ids[0], communication="summer-sale", purpose="marketing",
                       channels=channels, at=AT)
    event.remove(get_engine(), "before_cursor_execute", listener)
    started = time.perf_counter()
    for cid in ids:
        with unit_of_work() as session:
            service.decide(session, customer_id=cid, communication="summer-sale", purpose="marketing",
                           channels=channels, at=AT)
    single = n / (time.perf_counter() - started)
    started = time.perf_counter()
    with unit_of_work() as session:
        config = service.load_config(session)
        prepared = service.prepare_contexts(session, customer_ids=ids, config=config, at=AT)
        decisions = service.decide_many(prepared.values(), config=config, communication="summer-sale",
                                        purpose="marketing", channels=channels, at=AT)
        service.log_decisions(session, [(d_ctx.customer_id, "summer-sale", "marketing", "", d)
                                        for d_ctx, d in zip(prepared.values(), decisions, strict=True)])
    batch = n / (time.perf_counter() - started)
    print(f"with SQL (SQLite, {n:,} customers):")
    print(f"  decide() one by one:          {single:,.0f} decisions/s (each read, decided and logged in its own transaction)")
    print(f"  SQL statements per decide():  {len(statements)} (the configuration cached in this process)")
    print(f"  prepare_contexts+decide_many: {batch:,.0f} decisions/s (read in bulk, decided, logged in bulk)")
    print(f"  ratio: decide() one by one runs at {single / batch:.3f} of the bulk path and "
          f"{single / in_memory:.4f} of in-memory decide_many in this run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db-customers", type=int, default=0, help="also measure the SQL path on SQLite")
    args = parser.parse_args()
    people = population(args.customers, args.seed)
    best_decide = best_floor = float("inf")
    decisions = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        decisions = decide_many(people, config=CONFIG, communication="summer-sale", purpose="marketing",
                                channels=["email", "sms", "whatsapp", "push"], at=AT, topic="offers")
        best_decide = min(best_decide, time.perf_counter() - started)
        started = time.perf_counter()
        bare_loop(people)
        best_floor = min(best_floor, time.perf_counter() - started)
    rate, floor = args.customers / best_decide, args.customers / best_floor
    mix = Counter(d.outcome for d in decisions)
    print(f"customers: {args.customers:,} (seed {args.seed}), best of {args.repeat}")
    print(f"decide_many: {rate:,.0f} decisions/s ({best_decide * 1e6 / args.customers:.2f} µs each)")
    print(f"bare loop:   {floor:,.0f} customers/s over the same data")
    print(f"ratio:       decide_many runs at {rate / floor:.3f} of the bare loop ({floor / rate:.1f}x slower)")
    print("outcomes:    " + ", ".join(f"{k} {v:,}" for k, v in sorted(mix.items())))
    if args.db_customers:
        database_path(args.db_customers, args.seed, rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
