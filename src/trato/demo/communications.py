"""The demo company's communications: what Trato Demo sends, why, on which channels, in Spanish
and English, written by its departments and reviewed by compliance (most approved, some in
review, one sent back with changes requested, one still a draft).

Loaded through the content service like any other; loading again adds nothing (by key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from trato.content import service as content

AUTHORS = {"marketing": "user:Marta Ruiz", "billing": "user:Javier Gómez", "service": "user:Lucía Navarro",
           "network": "user:Pablo Ortega", "security": "user:Elena Vidal", "stores": "user:Irene Castro",
           "logistics": "user:Raúl Serrano", "legal": "user:Carmen Ibáñez"}
REVIEWER = "user:Compliance (Sara Molina)"

BLOCKS = {
    "header": ("header", "Cabecera", {
        "es": '<p style="color:#1d2433;font-size:20px;font-weight:bold">{{ company.name }}</p>',
        "en": '<p style="color:#1d2433;font-size:20px;font-weight:bold">{{ company.name }}</p>'}),
    "legal": ("legal", "Pie legal", {
        "es": '<p style="color:#4a5160;font-size:12px">{{ company.name }} · {{ company.address }}. Tratamos sus datos '
              'según nuestra <a href="https://demo.trato.example/privacidad" style="color:#1f5fbf">política de '
              'privacidad</a>.</p>',
        "en": '<p style="color:#4a5160;font-size:12px">{{ company.name }} · {{ company.address }}. We process your '
              'data under our <a href="https://demo.trato.example/privacy" style="color:#1f5fbf">privacy policy</a>.'
              '</p>'}),
    "signature": ("signature", "Firma", {"es": "El equipo de {{ company.name }}", "en": "The {{ company.name }} team"}),
}


def mjml(lang: str, paragraphs: list[str], cta: tuple[str, str] | None = None, marketing: bool = False) -> str:
    """A plain, accessible MJML e-mail: header and legal blocks, the text, an optional button."""
    text = "".join(f'<mj-text color="#1d2433" font-size="15px" line-height="22px">{p}</mj-text>' for p in paragraphs)
    button = (f'<mj-button background-color="#1f5fbf" color="#ffffff" href="{cta[1]}">{cta[0]}</mj-button>'
              if cta else "")
    unsubscribe = ""
    if marketing:
        label = "Darse de baja" if lang == "es" else "Unsubscribe"
        unsubscribe = (f'<mj-text color="#4a5160" font-size="12px"><a href="{{{{ links.unsubscribe }}}}" '
                       f'style="color:#1f5fbf">{label}</a></mj-text>')
    return (f'<mjml lang="{lang}"><mj-body background-color="#ffffff"><mj-section><mj-column>'
            '<mj-text>{% include "blocks/header" %}</mj-text>'
            f'{text}{button}<mj-text color="#1d2433">{{% include "blocks/signature" %}}</mj-text>'
            f'<mj-divider border-color="#dfe3ea" border-width="1px" />'
            f'<mj-text>{{% include "blocks/legal" %}}</mj-text>{unsubscribe}'
            '</mj-column></mj-section></mj-body></mjml>')


@dataclass
class Demo:
    key: str
    name: str
    purpose: str
    department: str
    kind: str
    trigger: str
    state: str  # approved | in_review | changes_requested | draft
    content: dict[str, dict[str, dict[str, Any]]]
    sample_data: dict[str, Any] = field(default_factory=dict)
    notes: str = ""


def _email(es: tuple[str, list[str]], en: tuple[str, list[str]], cta: dict[str, tuple[str, str]] | None = None,
           marketing: bool = False) -> dict[str, dict[str, Any]]:
    return {lang: {"subject": subject, "body_mjml": mjml(lang, paragraphs, (cta or {}).get(lang), marketing)}
            for lang, (subject, paragraphs) in (("es", es), ("en", en))}


def _texts(field_name: str, es: str, en: str) -> dict[str, dict[str, Any]]:
    return {"es": {field_name: es}, "en": {field_name: en}}


def _push(es: tuple[str, str], en: tuple[str, str], link: str) -> dict[str, dict[str, Any]]:
    return {lang: {"title": t, "body": b, "deep_link": link} for lang, (t, b) in (("es", es), ("en", en))}


def _letter(es: tuple[str, str], en: tuple[str, str]) -> dict[str, dict[str, Any]]:
    return {lang: {"title": t, "body_html": body + '<p>{% include "blocks/signature" %}</p>'}
            for lang, (t, body) in (("es", es), ("en", en))}


def _whatsapp(name: str, category: str, es: str, en: str, params: list[str],
              buttons: dict[str, list[dict[str, str]]] | None = None) -> dict[str, dict[str, Any]]:
    return {lang: {"mode": "template", "template_name": name, "category": category, "body": body, "params": params,
                   **({"buttons": buttons[lang]} if buttons else {})}
            for lang, body in (("es", es), ("en", en))}


HI = {"es": "Hola {{ customer.first_name }}", "en": "Hi {{ customer.first_name }}"}
DEMOS = [
    Demo("welcome", "Bienvenida", "service", "sales", "reactive", "Alta de cliente (evento Signed Up)", "approved", {
        "email": _email(("Te damos la bienvenida a {{ company.name }}", [HI["es"] + ", gracias por confiar en nosotros.",
                         "Tu número de cliente es {{ customer.customer_number }}. Desde la app puedes ver tus "
                         "facturas, tu consumo y pedir cita en tienda."]),
                        ("Welcome to {{ company.name }}", [HI["en"] + ", thank you for choosing us.",
                         "Your customer number is {{ customer.customer_number }}. In the app you can see your bills, "
                         "your usage and book a store appointment."]),
                        {"es": ("Abrir la app", "https://demo.trato.example/app"),
                         "en": ("Open the app", "https://demo.trato.example/app")}),
        "sms": _texts("text", "Bienvenido a Trato Demo, {{ customer.first_name }}. Tu cliente n. es "
                      "{{ customer.customer_number }}.", "Welcome to Trato Demo, {{ customer.first_name }}. Your "
                      "customer number is {{ customer.customer_number }}."),
        "push": _push(("Bienvenida", "Ya puedes gestionar tu cuenta desde la app."),
                      ("Welcome", "You can now manage your account in the app."), "trato://home"),
    }),
    Demo("invoice-ready", "Factura disponible", "transactional", "billing", "reactive", "Invoice Issued",
         "approved", {
        "email": _email(("Tu factura {{ data.invoice }} ya está disponible", [
            HI["es"] + ", ya tienes disponible tu factura {{ data.invoice }} por {{ data.amount|money }}.",
            "Se cargará en tu cuenta el {{ data.due|date('long') }}."]),
            ("Your invoice {{ data.invoice }} is ready", [
                HI["en"] + ", your invoice {{ data.invoice }} for {{ data.amount|money }} is ready.",
                "It will be charged to your account on {{ data.due|date('long') }}."]),
            {"es": ("Ver la factura", "https://demo.trato.example/facturas"),
             "en": ("See the invoice", "https://demo.trato.example/invoices")}),
        "sms": _texts("text", "Trato Demo: factura {{ data.invoice }} de {{ data.amount|money }} disponible en la app.",
                      "Trato Demo: invoice {{ data.invoice }} for {{ data.amount|money }} is in the app."),
        "whatsapp": _whatsapp("invoice_ready", "utility", "Hola {{1}}, tu factura {{2}} de {{3}} ya está disponible.",
                              "Hi {{1}}, your invoice {{2}} for {{3}} is ready.",
                              ["{{ customer.first_name }}", "{{ data.invoice }}", "{{ data.amount|money }}"]),
        "letter": _letter(("Factura {{ data.invoice }}", "<p>Estimado/a {{ customer.first_name }}:</p><p>Le enviamos "
                           "su factura {{ data.invoice }} por importe de {{ data.amount|money }}, con cargo el "
                           "{{ data.due|date('long') }}.</p>"),
                          ("Invoice {{ data.invoice }}", "<p>Dear {{ customer.first_name }},</p><p>Please find your "
                           "invoice {{ data.invoice }} for {{ data.amount|money }}, due on "
                           "{{ data.due|date('long') }}.</p>")),
    }, {"invoice": "F-2026-004512", "amount": 48.2, "due": "2026-12-05"}),
    Demo("payment-reminder", "Recordatorio de pago", "payment", "billing", "proactive",
         "Factura impagada 7 días después del vencimiento", "approved", {
        "email": _email(("Recordatorio: factura {{ data.invoice }} pendiente", [
            HI["es"] + ", no hemos podido cobrar la factura {{ data.invoice }} de {{ data.amount|money }}.",
            "Puedes pagarla hoy desde el área de cliente. Si ya lo has hecho, ignora este mensaje."]),
            ("Reminder: invoice {{ data.invoice }} is unpaid", [
                HI["en"] + ", we could not collect invoice {{ data.invoice }} for {{ data.amount|money }}.",
                "You can pay it today in your account. If you already have, please ignore this message."]),
            {"es": ("Pagar ahora", "https://demo.trato.example/pagar"),
             "en": ("Pay now", "https://demo.trato.example/pay")}),
        "sms": _texts("text", "Trato Demo: la factura {{ data.invoice }} ({{ data.amount|money }}) sigue pendiente. "
                      "Paga en https://demo.trato.example/pagar", "Trato Demo: invoice {{ data.invoice }} "
                      "({{ data.amount|money }}) is unpaid. Pay at https://demo.trato.example/pay"),
        "voice": _texts("ssml", "<speak>Hola {{ customer.first_name }}. Le llamamos de {{ company.name }}. La factura "
                        "{{ data.invoice }} sigue pendiente de pago.</speak>", "<speak>Hello {{ customer.first_name }}. "
                        "This is {{ company.name }}. Invoice {{ data.invoice }} is still unpaid.</speak>"),
        "letter": _letter(("Aviso de impago", "<p>Estimado/a {{ customer.first_name }}:</p><p>La factura "
                           "{{ data.invoice }} de {{ data.amount|money }} sigue pendiente.</p>"),
                          ("Payment overdue", "<p>Dear {{ customer.first_name }},</p><p>Invoice {{ data.invoice }} "
                           "for {{ data.amount|money }} is still unpaid.</p>")),
    }, {"invoice": "F-2026-003981", "amount": 61.5}, "Ley de Servicios de Pago; sin recargo antes de 30 días."),
    Demo("outage-notice", "Aviso de avería en la red", "service", "network", "proactive",
         "Incidencia de red que afecta al código postal del cliente", "approved", {
        "sms": _texts("text", "Trato Demo: hay una averia en tu zona ({{ data.area }}). Prevision de solucion: "
                      "{{ data.eta|datetime('short') }}.", "Trato Demo: there is an outage in your area "
                      "({{ data.area }}). Expected fix: {{ data.eta|datetime('short') }}."),
        "push": _push(("Avería en tu zona", "Estamos trabajando para solucionarla."),
                      ("Outage in your area", "We are working on it."), "trato://incidencias"),
        "email": _email(("Avería en {{ data.area }}", [HI["es"] + ", una avería afecta al servicio en "
                         "{{ data.area }}. Prevemos solucionarla el {{ data.eta|datetime('medium') }}."]),
                        ("Outage in {{ data.area }}", [HI["en"] + ", an outage affects the service in {{ data.area }}. "
                         "We expect to fix it by {{ data.eta|datetime('medium') }}."])),
        "web": _texts("html", "<div class='banner'>Avería en {{ data.area }}: estamos en ello.</div>",
                      "<div class='banner'>Outage in {{ data.area }}: we are on it.</div>"),
    }, {"area": "Madrid Centro", "eta": "2026-11-28T18:00:00Z"}),
    Demo("insurance-renewal", "Renovación del seguro del móvil", "advice", "sales", "proactive",
         "30 días antes del vencimiento del seguro", "in_review", {
        "email": _email(("Tu seguro del móvil se renueva el {{ data.renewal|date('long') }}", [
            HI["es"] + ", tu seguro para {{ data.device }} se renueva por {{ data.price|money }} al año.",
            "Si no quieres renovarlo, puedes cancelarlo sin coste antes de esa fecha."]),
            ("Your phone insurance renews on {{ data.renewal|date('long') }}", [
                HI["en"] + ", your insurance for {{ data.device }} renews at {{ data.price|money }} a year.",
                "If you do not want to renew, you can cancel at no cost before that date."])),
        "letter": _letter(("Renovación de su seguro", "<p>Su seguro para {{ data.device }} se renueva el "
                           "{{ data.renewal|date('long') }} por {{ data.price|money }}.</p>"),
                          ("Renewal of your insurance", "<p>Your insurance for {{ data.device }} renews on "
                           "{{ data.renewal|date('long') }} at {{ data.price|money }}.</p>")),
    }, {"device": "Galaxy S25", "price": 79.0, "renewal": "2027-01-10"}, "Ley de Contrato de Seguro, art. 22."),
    Demo("black-friday", "Ofertas de Black Friday", "marketing", "marketing", "proactive",
         "Campaña a clientes con consentimiento de marketing", "in_review", {
        "email": _email(("{{ customer.first_name }}, hasta un 30 % en móviles", [
            "Solo este fin de semana: hasta un 30 % de descuento en móviles y tablets."]),
            ("{{ customer.first_name }}, up to 30% off phones", [
                "This weekend only: up to 30% off phones and tablets."]),
            {"es": ("Ver ofertas", "https://demo.trato.example/ofertas"),
             "en": ("See the offers", "https://demo.trato.example/offers")}, marketing=True),
        "sms": _texts("text", "Trato Demo: hasta -30% en moviles este finde. Baja: responde BAJA",
                      "Trato Demo: up to 30% off phones this weekend. Reply STOP to opt out"),
        "whatsapp": _whatsapp("black_friday", "marketing", "Hola {{1}}, este fin de semana hasta un 30 % en móviles.",
                              "Hi {{1}}, up to 30% off phones this weekend.", ["{{ customer.first_name }}"],
                              {"es": [{"type": "quick_reply", "text": "No me interesa"}],
                               "en": [{"type": "quick_reply", "text": "Not interested"}]}),
        "push": _push(("Black Friday", "Hasta un 30 % en móviles."), ("Black Friday", "Up to 30% off phones."),
                      "trato://ofertas"),
    }),
    Demo("store-appointment", "Recordatorio de cita en tienda", "service", "stores", "reactive",
         "24 h antes de una cita reservada", "approved", {
        "sms": _texts("text", "Trato Demo: te esperamos el {{ data.at|datetime('short') }} en {{ data.store }}.",
                      "Trato Demo: see you on {{ data.at|datetime('short') }} at {{ data.store }}."),
        "whatsapp": _whatsapp("store_appointment", "utility", "Hola {{1}}, te esperamos el {{2}} en la tienda {{3}}.",
                              "Hi {{1}}, see you on {{2}} at our {{3}} store.",
                              ["{{ customer.first_name }}", "{{ data.at|datetime('short') }}", "{{ data.store }}"],
                              {"es": [{"type": "quick_reply", "text": "Cambiar cita"}],
                               "en": [{"type": "quick_reply", "text": "Change it"}]}),
        "email": _email(("Tu cita en {{ data.store }}", [HI["es"] + ", te esperamos el {{ data.at|datetime('long') }}."]),
                        ("Your appointment at {{ data.store }}", [HI["en"] + ", see you on "
                                                                  "{{ data.at|datetime('long') }}."])),
    }, {"at": "2026-12-02T10:30:00Z", "store": "Gran Vía 32"}),
    Demo("one-time-code", "Código de verificación", "transactional", "security", "reactive",
         "Inicio de sesión o cambio de datos sensibles", "approved", {
        "sms": _texts("text", "Tu codigo de Trato Demo es {{ data.code }}. No lo compartas con nadie.",
                      "Your Trato Demo code is {{ data.code }}. Do not share it with anyone."),
        "whatsapp": {lang: {"mode": "template", "template_name": "login_code", "category": "authentication",
                            "body": body, "params": ["{{ data.code }}"],
                            "buttons": [{"type": "url", "text": text, "url": "https://demo.trato.example/otp/{{1}}",
                                         "url_param": "{{ data.code }}"}]}
                     for lang, body, text in (("es", "{{1}} es tu código de verificación.", "Copiar código"),
                                              ("en", "{{1}} is your verification code.", "Copy code"))},
        "voice": _texts("ssml", "<speak>Su código es <say-as interpret-as='characters'>{{ data.code }}</say-as>."
                        "</speak>", "<speak>Your code is <say-as interpret-as='characters'>{{ data.code }}</say-as>."
                        "</speak>"),
    }, {"code": "482913"}, "PSD2: autenticación reforzada."),
    Demo("satisfaction-survey", "Encuesta de satisfacción", "research", "service", "reactive",
         "Caso cerrado en el centro de atención", "approved", {
        "email": _email(("¿Qué tal te atendimos?", [HI["es"] + ", ¿nos dices en un minuto qué tal fue tu consulta "
                                                    "del {{ data.closed|date('long') }}?"]),
                        ("How did we do?", [HI["en"] + ", could you tell us in a minute how your request of "
                                            "{{ data.closed|date('long') }} went?"]),
                        {"es": ("Responder", "https://demo.trato.example/encuesta"),
                         "en": ("Answer", "https://demo.trato.example/survey")}),
        "sms": _texts("text", "Trato Demo: valora tu consulta de 1 a 5 en https://demo.trato.example/encuesta",
                      "Trato Demo: rate your request from 1 to 5 at https://demo.trato.example/survey"),
    }, {"closed": "2026-11-20"}),
    Demo("order-shipped", "Pedido enviado", "transactional", "logistics", "reactive", "Order Shipped",
         "approved", {
        "email": _email(("Tu pedido {{ data.order }} va de camino", [HI["es"] + ", tu pedido {{ data.order }} "
                         "llegará el {{ data.eta|date('long') }}."]),
                        ("Your order {{ data.order }} is on its way", [HI["en"] + ", your order {{ data.order }} "
                         "arrives on {{ data.eta|date('long') }}."]),
                        {"es": ("Seguir el envío", "https://demo.trato.example/envios"),
                         "en": ("Track it", "https://demo.trato.example/tracking")}),
        "sms": _texts("text", "Trato Demo: tu pedido {{ data.order }} llega el {{ data.eta|date('short') }}.",
                      "Trato Demo: your order {{ data.order }} arrives on {{ data.eta|date('short') }}."),
        "push": _push(("Pedido enviado", "Llega el {{ data.eta|date('medium') }}."),
                      ("Order shipped", "Arrives on {{ data.eta|date('medium') }}."), "trato://pedidos"),
    }, {"order": "A-77120", "eta": "2026-11-30"}),
    Demo("price-change", "Modificación de tarifa", "advice", "legal", "proactive",
         "Cambio de condiciones con un mes de preaviso", "in_review", {
        "email": _email(("Cambios en tu tarifa desde el {{ data.effective|date('long') }}", [
            HI["es"] + ", tu tarifa {{ customer.plan }} pasará a costar {{ data.price|money }} al mes.",
            "Puedes darte de baja sin penalización antes de esa fecha."]),
            ("Changes to your plan from {{ data.effective|date('long') }}", [
                HI["en"] + ", your {{ customer.plan }} plan will cost {{ data.price|money }} a month.",
                "You may leave without penalty before that date."])),
        "letter": _letter(("Modificación de condiciones", "<p>Su tarifa {{ customer.plan }} pasará a "
                           "{{ data.price|money }} al mes desde el {{ data.effective|date('long') }}.</p>"),
                          ("Change of terms", "<p>Your {{ customer.plan }} plan will cost {{ data.price|money }} a "
                           "month from {{ data.effective|date('long') }}.</p>")),
    }, {"price": 39.9, "effective": "2027-01-01"}, "Ley General de Telecomunicaciones, art. 67: un mes de preaviso."),
    Demo("data-usage-alert", "Aviso de consumo de datos", "service", "network", "reactive",
         "El cliente supera el 80 % de sus datos", "draft", {
        "sms": _texts("text", "Trato Demo: has usado el {{ data.percent }} % de tus datos.",
                      "Trato Demo: you have used {{ data.percent }}% of your data."),
        "push": _push(("Datos", "Has usado el {{ data.percent }} % de tus datos."),
                      ("Data", "You have used {{ data.percent }}% of your data."), "trato://consumo"),
    }, {"percent": 80}),
    Demo("plan-advice", "Recomendación de tarifa", "advice", "sales", "proactive",
         "Consumo de 3 meses por encima de la tarifa", "changes_requested", {
        "email": _email(("Una tarifa que te encaja mejor", [HI["es"] + ", con tu consumo te ahorrarías "
                         "{{ data.saving|money }} al mes con la tarifa {{ data.plan }}."]),
                        ("A plan that fits you better", [HI["en"] + ", with your usage you would save "
                         "{{ data.saving|money }} a month on the {{ data.plan }} plan."])),
    }, {"saving": 6.5, "plan": "Fibra 1 Gb + 50 GB"}),
    Demo("direct-debit-failed", "Recibo devuelto", "payment", "billing", "reactive", "Direct Debit Returned",
         "approved", {
        "email": _email(("Tu banco ha devuelto el recibo {{ data.invoice }}", [
            HI["es"] + ", tu banco ha devuelto el recibo de {{ data.amount|money }}. Revisa tus datos bancarios."]),
            ("Your bank returned payment {{ data.invoice }}", [
                HI["en"] + ", your bank returned the {{ data.amount|money }} payment. Please check your bank details."]),
            {"es": ("Revisar datos", "https://demo.trato.example/banco"),
             "en": ("Check details", "https://demo.trato.example/bank")}),
        "sms": _texts("text", "Trato Demo: tu banco ha devuelto el recibo {{ data.invoice }}. Revisa tus datos en la app.",
                      "Trato Demo: your bank returned payment {{ data.invoice }}. Check your details in the app."),
        "letter": _letter(("Recibo devuelto", "<p>Su banco ha devuelto el recibo {{ data.invoice }} de "
                           "{{ data.amount|money }}.</p>"),
                          ("Returned payment", "<p>Your bank returned payment {{ data.invoice }} for "
                           "{{ data.amount|money }}.</p>")),
    }, {"invoice": "R-2026-11-88", "amount": 52.3}),
    Demo("repair-ready", "Reparación lista para recoger", "service", "stores", "reactive", "Repair Completed",
         "in_review", {
        "sms": _texts("text", "Trato Demo: tu {{ data.device }} ya esta reparado. Recogelo en {{ data.store }}.",
                      "Trato Demo: your {{ data.device }} is repaired. Collect it at {{ data.store }}."),
        "whatsapp": _whatsapp("repair_ready", "utility", "Hola {{1}}, tu {{2}} ya está reparado. Recógelo en {{3}}.",
                              "Hi {{1}}, your {{2}} is repaired. Collect it at {{3}}.",
                              ["{{ customer.first_name }}", "{{ data.device }}", "{{ data.store }}"]),
    }, {"device": "iPhone 15", "store": "Gran Vía 32"}),
]


def load_communications(session: Session) -> int:
    """Add the demo's blocks and communications that are not there yet; returns how many were added."""
    existing_blocks = {b.key for b in content.list_blocks(session)}
    for key, (kind, name, body) in BLOCKS.items():
        if key not in existing_blocks:
            content.create_block(session, key=key, kind=kind, name=name, body=body, actor=REVIEWER)
    existing = {c.key for c in content.list_communications(session)}
    added = 0
    for demo in DEMOS:
        if demo.key in existing:
            continue
        author = AUTHORS.get(demo.department, AUTHORS["service"])
        communication = content.create_communication(
            session, key=demo.key, name=demo.name, purpose=demo.purpose, department=demo.department, kind=demo.kind,
            trigger=demo.trigger, regulatory_notes=demo.notes, default_language="es", channels=list(demo.content),
            languages=["es", "en"], sample_data=demo.sample_data, content=demo.content, actor=author,
        )
        version_id = communication.latest_version_id
        assert version_id is not None
        if demo.state != "draft":
            version = content.submit(session, version_id=version_id, actor=author)
            if demo.state == "approved":
                content.approve(session, version_id=version_id, actor=REVIEWER, comment="Revisado",
                                acknowledge=[f["code"] for f in version.findings])
            elif demo.state == "changes_requested":
                content.request_changes(session, version_id=version_id, actor=REVIEWER,
                                        comment="Indicar el ahorro anual y la permanencia de la nueva tarifa.")
        added += 1
    return added
