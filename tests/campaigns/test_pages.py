"""The console's campaign pages in Spanish and English: list, pre-flight of a draft, progress and
results charts of a sent campaign, and the controls."""

from __future__ import annotations

from typing import Any

from tests.campaigns.conftest import create, launch


def test_list_and_detail_pages_in_both_languages(signed_in: Any, campaign_world: dict[str, Any]) -> None:
    draft = create(campaign_world, name="Borrador <b>")
    sent = create(campaign_world, name="Enviada")
    launch(sent)
    listing = signed_in.get("/campaigns?lang=es")
    assert listing.status_code == 200 and "Campañas" in listing.text and "Borrador &lt;b&gt;" in listing.text
    page = signed_in.get(f"/campaigns/{draft}?lang=es")
    assert page.status_code == 200 and "Comprobación previa" in page.text and 'id="preflight"' in page.text
    done = signed_in.get(f"/campaigns/{sent}?lang=en")
    assert done.status_code == 200 and "12 of 12 recipients processed" in done.text
    assert "<svg" in done.text and "Delivered" in done.text and 'id="holdout"' in done.text
    assert signed_in.get("/campaigns/cmp_nope").status_code == 404


def test_pausing_from_the_page_needs_the_form_token(signed_in: Any, campaign_world: dict[str, Any]) -> None:
    import re

    campaign_id = create(campaign_world)
    page = signed_in.get(f"/campaigns/{campaign_id}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    refused = signed_in.post(f"/campaigns/{campaign_id}/cancel", data={"csrf": "forged"})
    assert refused.status_code == 403
    done = signed_in.post(f"/campaigns/{campaign_id}/cancel", data={"csrf": token.group(1)}, follow_redirects=False)
    assert done.status_code == 303
    assert "Cancelled" in signed_in.get(f"/campaigns/{campaign_id}?lang=en").text
