"""Every console page of communications, the archive and the contact policy, over the demo
company, speaks the viewer's language: Spanish pages carry no English console words, and the
English pages show their own."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select

from tests.console.conftest import sign_in_with_token
from trato.archive.models import ArchivedMessage
from trato.content import service as content
from trato.customers.models import Customer
from trato.demo.service import load_demo

# Words of the console's own vocabulary that no Spanish page should show (customer data and
# message text aside: they are skipped below, as are codes and ids in monospace).
ENGLISH = re.compile(
    r"\b(Version|Versions|Approved|approved|submitted|changes requested|Preview|Warning|Channel|Channels|"
    r"Customer|Sent|Status|Search|Language|Download|Verify|Communication|Communications|Archive|Policy|"
    r"Consent|Purpose|Department|Back|None|the|must|has no|is not|link|Letter|Draft|Review|review|Approve|"
    r"Comment|Submit|Filter|from|with|without|and|or|archived|preheader|subject|Title|Body|Image|Delivered|Failed|"
    r"email|comment|changes_requested)\b"
)
# Where customer text and message content are shown: not the console's words.
SKIPPED = {"script", "style", "iframe", "code", "pre", "textarea", "option", "address"}
SKIPPED_CLASSES = ("mono", "bubble", "wa-body", "wa-header", "wa-footer", "wa-button", "voice-script", "spoken",
                   "subject", "text-part", "push-title", "push-card", "part-text", "message-bubble")


class _Text(HTMLParser):
    """The visible text of a page outside customer data and message content."""

    def __init__(self) -> None:
        super().__init__()
        self.skip: list[bool] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "input", "meta", "link", "hr", "source"):
            return
        classes = (dict(attrs).get("class") or "").split()
        self.skip.append(tag in SKIPPED or any(c in SKIPPED_CLASSES for c in classes))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "img", "input", "meta", "link", "hr", "source") and self.skip:
            self.skip.pop()

    def handle_data(self, data: str) -> None:
        if not any(self.skip):
            self.text.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.text).split())


def _pages(session) -> list[str]:  # type: ignore[no-untyped-def]
    communications = content.list_communications(session)
    keys = {"direct-debit-failed", "plan-advice", "data-usage-alert", "black-friday", "repair-ready", "welcome"}
    customer = session.scalars(select(Customer).where(Customer.country == "ES")).first()
    entries = session.scalars(select(ArchivedMessage).order_by(ArchivedMessage.sequence)).all()
    by_channel = {e.channel: e for e in entries}
    pages = ["/communications", "/communications?purpose=payment&status=active", "/communications/blocks/legal",
             "/archive", "/archive?channel=sms", "/policy"]
    pages += [f"/communications/{c.id}" for c in communications if c.key in keys]
    letter = next(c for c in communications if c.key == "direct-debit-failed")
    pages.append(f"/communications/{letter.id}?customer={customer.id}")
    pages += [f"/archive/{e.id}" for e in by_channel.values()]
    return pages


def test_communications_archive_and_policy_pages_speak_the_viewers_language(
        session, client, admin_token) -> None:  # type: ignore[no-untyped-def]
    load_demo(customers=40, seed=7, progress=None)
    pages = _pages(session)
    session.rollback()
    assert sign_in_with_token(client, admin_token).status_code == 303
    found: dict[str, list[str]] = {}
    for path in pages:
        spanish = client.get(path, params={"lang": "es"})
        assert spanish.status_code == 200, (path, spanish.text[:500])
        words = sorted(set(ENGLISH.findall(visible(spanish.text))))
        if words:
            found[path] = words
        english = client.get(path, params={"lang": "en"})
        assert english.status_code == 200 and '<html lang="en">' in english.text
        assert ENGLISH.search(visible(english.text)), f"{path}: the English page shows its own words"
    assert not found, f"English words on Spanish pages: {found}"

    # The version history says what reviewers did in words, not the stored action names.
    reviewed = next(p for p in pages if p.startswith("/communications/com_") and "customer=" in p)
    assert "enviada a revisión" in client.get(reviewed, params={"lang": "es"}).text
    english = client.get(reviewed, params={"lang": "en"}).text
    assert "sent for review" in english and "approved it" in english and "· submitted<" not in english

