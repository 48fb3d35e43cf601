"""Personalised e-mail rendering: the sandboxed Jinja2 render per recipient against a bare one.

    .venv/bin/python bench/render.py [--seconds S] [--rounds R] [--recipients N]

A ~2 KB MJML e-mail (greeting, a loop over invoice lines in sections and in a table, a
condition, a button and an unsubscribe link) is compiled ONCE with
``trato.content.email.compile_mjml`` (MJML -> HTML, CSS inlined, Jinja tags intact), as it is
once per template version. The same compiled HTML is then loaded in a
``jinja2.sandbox.SandboxedEnvironment`` (what trato runs for user-written templates) and in a
bare ``jinja2.Environment`` (the baseline), both with autoescape, and each renders for N
different recipients in turn, R alternating rounds of S seconds each. Printed: the compile
time, renders/s of each (the best round), and the ratio sandbox / bare; the target is >= 0.5.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import jinja2  # noqa: E402
from jinja2.sandbox import SandboxedEnvironment  # noqa: E402

from trato.content.email import compile_mjml  # noqa: E402

SOURCE = """<mjml lang="es">
  <mj-head>
    <mj-title>Tu factura {{ invoice.number }}</mj-title>
    <mj-preview>{{ customer.first_name }}, tu factura de {{ invoice.total }} está lista</mj-preview>
    <mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes>
    <mj-style>.line { color: #333333; } .muted { color: #555555; }</mj-style>
  </mj-head>
  <mj-body background-color="#ffffff">
    <mj-section>
      <mj-column>
        <mj-image src="https://cdn.example.com/logo.png" alt="Energía Ejemplo" width="140px" />
        <mj-text font-size="20px" color="#1a1a1a">Hola {{ customer.first_name }},</mj-text>
        <mj-text color="#333333">Tu factura <b>{{ invoice.number }}</b> de {{ invoice.period }}
          ya está disponible. El importe de {{ invoice.total }} se cargará el {{ invoice.due }}
          en la cuenta que termina en {{ customer.iban_tail }}.{% if invoice.instalments %}
          Puedes pagarla en {{ invoice.instalments }} plazos sin intereses.{% endif %}</mj-text>
      </mj-column>
    </mj-section>
    {% for line in invoice.lines %}
    <mj-section padding="0px 25px">
      <mj-column><mj-text css-class="line">{{ line.label }}</mj-text></mj-column>
      <mj-column><mj-text align="right" css-class="line">{{ line.amount }}</mj-text></mj-column>
    </mj-section>
    {% endfor %}
    <mj-section>
      <mj-column>
        <mj-table>
          <tr><th align="left">Concepto</th><th align="right">Importe</th></tr>
          {% for line in invoice.lines %}<tr><td>{{ line.label }}</td><td align="right">{{ line.amount }}</td></tr>{% endfor %}
          <tr><td><b>Total</b></td><td align="right"><b>{{ invoice.total }}</b></td></tr>
        </mj-table>
        <mj-button href="{{ invoice.url }}" background-color="#0b5394" color="#ffffff">Ver factura</mj-button>
        {% if customer.segment == "vip" %}<mj-text color="#333333">Como cliente preferente, tu gestor {{ customer.manager }} te atiende en el 910 000 000.</mj-text>{% endif %}
        <mj-text font-size="12px" css-class="muted">Energía Ejemplo S.A. · Paseo de la Castellana 1 · 28046 Madrid.
          <a href="{{ links.preferences }}">Preferencias</a> · <a href="{{ links.unsubscribe }}">Darse de baja</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""

NAMES = ["Ana", "Lucía", "Carlos", "Jorge", "Marta", "Pablo", "Sofía", "Javier", "Elena", "Diego"]


def contexts(count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lines = [{"label": label, "amount": f"{rng.randint(5, 90)},{rng.randint(0, 99):02d} €"}
                 for label in rng.sample(["Electricidad", "Gas", "Mantenimiento", "Alquiler de "
                                          "contador", "Impuesto eléctrico", "IVA"], rng.randint(2, 5))]
        out.append({
            "customer": {"first_name": rng.choice(NAMES) + ("<b>" if i % 50 == 0 else ""),
                         "iban_tail": f"{rng.randint(0, 9999):04d}",
                         "segment": "vip" if i % 7 == 0 else "standard", "manager": "Marta Gil"},
            "invoice": {"number": f"F-2026-{i:06d}", "period": "noviembre de 2026",
                        "total": f"{rng.randint(20, 300)},{rng.randint(0, 99):02d} €",
                        "due": "5 de diciembre", "instalments": 3 if i % 3 == 0 else None,
                        "url": f"https://energia.example.com/f/{i:06d}", "lines": lines},
            "links": {"preferences": f"https://energia.example.com/p/{i}",
                      "unsubscribe": f"https://energia.example.com/u/{i}"},
        })
    return out


def rate(template: jinja2.Template, people: list[dict], seconds: float) -> float:
    renders, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for context in people:
            template.render(context)
        renders += len(people)
        now = time.perf_counter()
        if now >= deadline:
            return renders / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=200)
    args = parser.parse_args()

    start = time.perf_counter()
    compiled = compile_mjml(SOURCE)
    compile_ms = (time.perf_counter() - start) * 1000
    sandboxed = SandboxedEnvironment(autoescape=True).from_string(compiled)
    bare = jinja2.Environment(autoescape=True).from_string(compiled)
    people = contexts(args.recipients)
    a, b = sandboxed.render(people[0]), bare.render(people[0])
    assert a == b, "the sandboxed and the bare render must give the same e-mail"

    print(f"MJML source {len(SOURCE.encode()):,} bytes -> compiled template "
          f"{len(compiled.encode()):,} bytes in {compile_ms:.1f} ms (once per version); "
          f"a rendered e-mail is {len(a.encode()):,} bytes")
    best = {"sandboxed": 0.0, "bare": 0.0}
    for round_ in range(1, args.rounds + 1):
        for name, template in (("bare", bare), ("sandboxed", sandboxed)):
            value = rate(template, people, args.seconds)
            best[name] = max(best[name], value)
            print(f"  round {round_}: {name:9} {value:9,.0f} renders/s")
    ratio = best["sandboxed"] / best["bare"]
    print(f"sandboxed Jinja2: {best['sandboxed']:,.0f} renders/s")
    print(f"bare Jinja2 (baseline, same run): {best['bare']:,.0f} renders/s")
    print(f"ratio sandboxed / bare: {ratio:.2f} (target >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
