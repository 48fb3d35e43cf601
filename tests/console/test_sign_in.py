"""Signing in and out of the console: tokens, users, CSRF, redirects, session cookie, headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.console.conftest import csrf_of, sign_in_with_token


def _create_user(email: str = "lucia@example.com", password: str = "correct horse battery", *,
                 language: str = "es", role: str = "editor", name: str = "Lucía Pérez") -> None:
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        service.create_user(s, email=email, name=name, password=password, role=role, language=language, actor="test")


def test_sign_in_page_is_a_form_with_both_ways(client, database_url):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'name="token"' in response.text and 'name="password"' in response.text
    cookie = response.headers["set-cookie"]
    assert "trato_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=43200" in cookie


def test_sign_in_with_a_token(client, admin_token):
    response = sign_in_with_token(client, admin_token)
    assert response.status_code == 303
    assert response.headers["location"] == "/customers"
    page = client.get("/customers")
    assert page.status_code == 200
    assert "test admin" in page.text
    # Signed in, the sign-in page sends people on.
    again = client.get("/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/customers"


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_every_role_may_sign_in(client, database_url, role):
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, secret = service.create_token(s, name=f"{role} token", role=role, actor="test")
    assert sign_in_with_token(client, secret).status_code == 303
    assert f"{role} token" in client.get("/customers").text


def test_sign_in_with_email_and_password(client, database_url):
    _create_user(email="Lucia@Example.com")
    form = client.get("/")
    response = client.post("/", data={
        "csrf": csrf_of(form.text), "via": "password", "email": "lucia@example.com",
        "password": "correct horse battery",
    }, follow_redirects=False)
    assert response.status_code == 303
    page = client.get("/customers")
    assert "Lucía Pérez" in page.text
    assert "Editor" in page.text


@pytest.mark.parametrize(("data", "spanish", "english"), [
    ({"via": "token", "token": "trt_not-a-real-token"},
     "Este token de API no es válido", "This API token is not valid"),
    ({"via": "token", "token": ""}, "Este token de API no es válido", "This API token is not valid"),
    ({"via": "password", "email": "lucia@example.com", "password": "wrong password!"},
     "El correo electrónico o la contraseña no son correctos", "The e-mail or the password is wrong"),
    ({"via": "password", "email": "nobody@example.com", "password": "whatever123"},
     "El correo electrónico o la contraseña no son correctos", "The e-mail or the password is wrong"),
])
def test_wrong_credentials_answer_401_on_the_form(client, database_url, data, spanish, english):
    _create_user()
    form = client.get("/")
    response = client.post("/", data={"csrf": csrf_of(form.text), **data}, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert spanish in response.text
    assert 'role="alert"' in response.text
    english_page = client.post("/?lang=en", data={"csrf": csrf_of(response.text), **data}, follow_redirects=False)
    assert english_page.status_code == 401
    assert english in english_page.text
    assert client.get("/customers", follow_redirects=False).status_code == 303


def test_a_disabled_user_cannot_sign_in(client, database_url):
    from sqlalchemy import update

    from trato.console.models import User
    from trato.core.clock import utcnow
    from trato.core.db import unit_of_work

    _create_user()
    with unit_of_work() as s:
        s.execute(update(User).values(disabled_at=utcnow()))
    form = client.get("/")
    response = client.post("/", data={
        "csrf": csrf_of(form.text), "via": "password", "email": "lucia@example.com",
        "password": "correct horse battery",
    }, follow_redirects=False)
    assert response.status_code == 401


def test_sign_in_without_a_valid_csrf_token_is_refused(client, admin_token):
    client.get("/")
    for csrf in ("", "forged", csrf_of(client.get("/").text) + "x"):
        response = client.post("/", data={"csrf": csrf, "via": "token", "token": admin_token},
                               follow_redirects=False)
        assert response.status_code == 403
        assert "El formulario ha caducado" in response.text
    assert client.get("/customers", follow_redirects=False).status_code == 303


def test_a_csrf_token_belongs_to_its_own_session(client, admin_token, app):
    from fastapi.testclient import TestClient

    stolen = csrf_of(client.get("/").text)
    with TestClient(app) as other:
        other.get("/")
        response = other.post("/", data={"csrf": stolen, "via": "token", "token": admin_token},
                              follow_redirects=False)
    assert response.status_code == 403


def test_sign_out_needs_the_csrf_token_and_ends_the_session(signed_in):
    refused = signed_in.post("/logout", data={"csrf": "nope"}, follow_redirects=False)
    assert refused.status_code == 403
    assert signed_in.get("/customers", follow_redirects=False).status_code == 200

    page = signed_in.get("/customers")
    response = signed_in.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert signed_in.get("/customers", follow_redirects=False).status_code == 303


def test_signing_in_replaces_the_session_so_an_old_csrf_token_is_useless(client, admin_token):
    before = csrf_of(client.get("/").text)
    assert sign_in_with_token(client, admin_token).status_code == 303
    assert client.post("/logout", data={"csrf": before}, follow_redirects=False).status_code == 403


def test_console_pages_redirect_to_sign_in_and_back(client, admin_token):
    response = client.get("/customers?q=ana", follow_redirects=False)
    assert response.status_code == 303
    location = urlparse(response.headers["location"])
    assert location.path == "/"
    next_path = parse_qs(location.query)["next"][0]
    assert next_path == "/customers?q=ana"

    form = client.get(response.headers["location"])
    assert f'value="{next_path}"' in form.text.replace("&amp;", "&")
    signed = client.post("/", data={"csrf": csrf_of(form.text), "via": "token", "token": admin_token,
                                    "next": next_path}, follow_redirects=False)
    assert signed.headers["location"] == "/customers?q=ana"


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com", "/\\evil.example.com"])
def test_sign_in_never_sends_people_to_another_site(client, admin_token, target):
    form = client.get("/")
    response = client.post("/", data={"csrf": csrf_of(form.text), "via": "token", "token": admin_token,
                                      "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/customers"


def test_htmx_requests_without_a_session_are_sent_to_sign_in(client, database_url):
    response = client.get("/customers?q=a", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["hx-redirect"].startswith("/?next=")


def test_a_tampered_session_cookie_is_ignored(signed_in):
    cookie = signed_in.cookies.get("trato_session")
    signed_in.cookies.set("trato_session", cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert signed_in.get("/customers", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_console_sessions(signed_in, database_url):
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        (token,) = service.list_tokens(s)
        service.revoke_token(s, token_id=token.id, actor="test")
    assert signed_in.get("/customers", follow_redirects=False).status_code == 303


def test_an_expired_session_is_not_accepted(client, admin_token, monkeypatch):
    import time

    from trato.console import session as sessions

    assert sign_in_with_token(client, admin_token).status_code == 303
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + sessions.MAX_AGE + 60)
    assert client.get("/customers", follow_redirects=False).status_code == 303


def test_console_responses_carry_security_headers(signed_in):
    for path in ("/", "/customers", "/customers/cus_unknown", "/static/console/console.css",
                 "/static/console/htmx.min.js"):
        response = signed_in.get(path, follow_redirects=False)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
    page = signed_in.get("/customers")
    assert page.headers["cache-control"] == "no-store"
    assert "HX-Request" in page.headers["vary"]


def test_pages_use_no_inline_script_and_nothing_from_elsewhere(signed_in):
    import re

    html = signed_in.get("/customers?q=x").text + signed_in.get("/").text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script> would be blocked by the CSP"
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers would be blocked by the CSP"


def test_the_api_schema_leaves_console_pages_out(client, database_url):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/customers" not in paths and "/" not in paths and "/logout" not in paths


def test_other_domains_add_their_place_in_the_header(signed_in):
    from trato.console import pages

    pages.NAV.append(pages.NavEntry("/journeys", "Journeys"))
    try:
        html = signed_in.get("/customers").text
    finally:
        pages.NAV.pop()
    assert '<a href="/customers" aria-current="page">Clientes</a>' in html
    assert '<a href="/journeys">Journeys</a>' in html


def test_repeated_failures_slow_sign_in_down(client, database_url):
    from trato.console.throttle import MAX_FAILURES

    _create_user()
    for _ in range(MAX_FAILURES):
        form = client.get("/")
        wrong = client.post("/", data={"csrf": csrf_of(form.text), "via": "password",
                                       "email": "lucia@example.com", "password": "not the one"})
        assert wrong.status_code == 401
    form = client.get("/")
    blocked = client.post("/", data={"csrf": csrf_of(form.text), "via": "password",
                                     "email": "lucia@example.com", "password": "correct horse battery"},
                          follow_redirects=False)
    assert blocked.status_code == 429  # even the right password waits: guessing must stay slow
    assert int(blocked.headers["retry-after"]) > 0
    assert "Demasiados intentos fallidos" in blocked.text


def test_failure_limiter_window():
    from trato.console.throttle import FailureLimiter

    limiter = FailureLimiter(limit=2, window=60)
    limiter.failed("ip:a")
    assert limiter.wait_seconds("ip:a") == 0
    limiter.failed("ip:a")
    assert 0 < limiter.wait_seconds("ip:a", "email:x") <= 60
    assert limiter.wait_seconds("ip:b") == 0
    limiter.succeeded("ip:a")
    assert limiter.wait_seconds("ip:a") == 0
