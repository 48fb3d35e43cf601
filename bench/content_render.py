"""trato's own per-recipient e-mail render (bounded sandbox) against a bare Jinja2 render.

    .venv/bin/python bench/content_render.py [--seconds S] [--rounds R] [--recipients N]

``bench/render.py`` measures Jinja's stock ``SandboxedEnvironment``; this measures what trato
actually runs per recipient: ``trato.content.templating`` (the sandbox plus the time and output
bounds: a deadline checked in every loop, call and chunk of output, sizes checked before
``*``/``+``/``~``/``%``, output counted as it is produced) on the same ~2 KB MJML e-mail,
compiled once with ``compile_mjml``. Baseline, in the same run: a bare ``jinja2.Environment``
with autoescape rendering the same compiled HTML for the same recipients. Printed: renders/s
of each (best of R alternating rounds) and the ratio trato / bare; the issue's target is >= 0.5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import jinja2  # noqa: E402
from render import SOURCE, contexts  # noqa: E402  (the same e-mail and recipients as bench/render.py)

from trato.content import templating  # noqa: E402
from trato.content.email import compile_mjml  # noqa: E402


def rate(render_one, people: list[dict], seconds: float) -> float:  # type: ignore[no-untyped-def]
    done, index, start = 0, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            render_one(people[index % len(people)])
            index += 1
        done += 50
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=1000)
    args = parser.parse_args()
    people = contexts(args.recipients)
    started = time.perf_counter()
    html = compile_mjml(SOURCE)
    compile_ms = (time.perf_counter() - started) * 1000
    bounded = templating.compile_template(html, autoescape=True)
    limits = templating.Limits(timeout_ms=200, max_output_bytes=1024 * 1024)
    bare = jinja2.Environment(autoescape=True).from_string(html)
    sample = templating.render(bounded, people[0], limits=limits)
    assert sample == bare.render(people[0]), "trato's render must give the same HTML as the bare one"
    best = {"trato": 0.0, "bare": 0.0}
    for _ in range(args.rounds):
        best["bare"] = max(best["bare"], rate(bare.render, people, args.seconds))
        best["trato"] = max(best["trato"], rate(lambda p: templating.render(bounded, p, limits=limits), people,
                                                args.seconds))
    print(f"compiled MJML once: {compile_ms:.1f} ms, {len(sample.encode()):,} bytes of HTML per recipient")
    print(f"bare jinja2 (baseline):     {best['bare']:>10,.0f} renders/s")
    print(f"trato bounded sandbox:      {best['trato']:>10,.0f} renders/s")
    print(f"ratio trato / bare:         {best['trato'] / best['bare']:>10.2f}   (target >= 0.50)")


if __name__ == "__main__":
    main()
