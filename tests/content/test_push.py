"""Push payloads and their checks."""

from __future__ import annotations

import pytest

from trato.content.push import push_payload


def codes(*args, **kwargs) -> list[str]:
    return [f.code for f in push_payload(*args, **kwargs).findings]


def test_payload_and_no_findings_when_all_fits():
    result = push_payload(" Tu pedido ha salido ", "Llega el viernes entre 9 y 14 h.",
                          image="https://cdn.example.com/p.png", deep_link="tienda://pedidos/10443")
    assert result.payload == {"title": "Tu pedido ha salido",
                              "body": "Llega el viernes entre 9 y 14 h.",
                              "image": "https://cdn.example.com/p.png",
                              "deep_link": "tienda://pedidos/10443"}
    assert result.findings == []
    assert push_payload("t", "b").payload == {"title": "t", "body": "b"}


def test_lengths_are_warnings_at_typical_lock_screen_limits():
    assert codes("x" * 65, "y" * 240) == []
    findings = push_payload("x" * 66, "y" * 241).findings
    assert [(f.code, f.severity) for f in findings] == [("push.title_long", "warning"),
                                                        ("push.body_long", "warning")]
    assert findings[0].detail == {"length": 66, "limit": 65}


def test_empty_and_too_large_are_errors():
    assert codes("", "body") == ["push.empty"]
    assert codes("title", "   ") == ["push.empty"]
    assert codes("t", "é" * 2100) == ["push.body_long", "push.too_large"]


@pytest.mark.parametrize(("link", "expected"), [
    ("https://tienda.example.com/p/1", []),
    ("tienda://pedidos/1", []),
    ("http://tienda.example.com/p/1", ["push.deep_link_http"]),
    ("javascript:alert(1)", ["push.deep_link"]),
    ("data:text/html,x", ["push.deep_link"]),
    ("/relative/path", ["push.deep_link"]),
    ("https:example.com", ["push.deep_link"]),
])
def test_deep_links(link, expected):
    assert codes("t", "b", deep_link=link) == expected


def test_image_must_be_https():
    assert codes("t", "b", image="http://cdn.example.com/p.png") == ["push.image_url"]
