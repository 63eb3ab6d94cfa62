"""Chat messages (Apprise channels) from our own template: severity, watch-list, title,
sources, matched words, the link and the delivery's reference.

Feed text is hostile, and chat markup turns text into actions: ``@channel``, ``@everyone``
and ``<!here>`` ping a whole room, ``[text](url)`` and ``<a href>`` make links, ``*`` and
``#`` restyle the message. Every value from a feed is made one clean line, every mention
sign is followed by U+200B ZERO WIDTH SPACE (it breaks the mention and shows nothing), and
then escaped for the target's
markup: Markdown gets a backslash before each of its punctuation marks, HTML its entities.
The only link in a message is the item's own, when it is http(s), written by us.
"""

from __future__ import annotations

import html
import re
from typing import Literal

from alerts.render import (
    also_reported_by,
    clean_line,
    highlight,
    safe_url,
    story_languages,
    terms,
)
from alerts.types import Alert, Digest

Markup = Literal["markdown", "html", "text"]
_BREAK = "\u200b"
_MENTION = re.compile(r"([@＠!#])")  # @user, @channel; <!here>; #channel on some targets
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=^$&:\"'])")
DIGEST_ITEMS = 20


def defuse(text: str, limit: int = 300) -> str:
    """One line of feed text that can mention no one."""
    return _MENTION.sub(lambda m: m.group(1) + _BREAK, clean_line(text, limit))


def escape(text: str, markup: Markup) -> str:
    """Feed text as literal text in ``markup`` (after ``defuse``)."""
    if markup == "markdown":
        return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    if markup == "html":
        return html.escape(text, quote=True)
    return text


def _text(text: str, markup: Markup, limit: int = 300) -> str:
    return escape(defuse(text, limit), markup)


def _link(alert: Alert, markup: Markup) -> str:
    title = _text(alert.item.title, markup)
    url = safe_url(alert.item.url)
    if not url:
        return title
    if markup == "markdown":
        target = url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
        return f"[{title}]({target})"
    if markup == "html":
        return f'<a href="{html.escape(url, quote=True)}">{title}</a>'
    return f"{title}\n{url}"


def _bold(text: str, markup: Markup) -> str:
    return {"markdown": f"**{text}**", "html": f"<b>{text}</b>"}.get(markup, text)


def chat_title(alert: Alert, markup: Markup) -> str:
    severity = clean_line(alert.watchlist.severity, 20).upper()
    update = "Update: " if alert.update else ""
    return _text(f"[{severity}] {update}{alert.watchlist.title}", markup, 200)


def chat_body(alert: Alert, markup: Markup) -> str:
    """The message: what happened, where it was reported, which watch-list fired and why."""
    story = alert.story.sources if alert.story else ()
    sources = [alert.item.feed_id, *(s for s in story if s != alert.item.feed_id)]
    sources += [s for s in also_reported_by(alert) if s not in sources]
    lines = [_link(alert, markup)]
    if alert.update:
        lines.append(_text(alert.update, markup, 200))
    named = ", ".join(sources[:10])
    if alert.item.language:
        named = f"{alert.item.feed_id} ({alert.item.language}){named[len(alert.item.feed_id) :]}"
    lines.append(f"{_text('Sources', markup)}: {_text(named, markup)}")
    if languages := story_languages(alert):
        lines.append(f"{_text('Reported in', markup)}: {_text(', '.join(languages), markup)}")
    lines.append(f"{_text('Matched', markup)}: {_text(', '.join(terms(alert)), markup)}")
    snippet = "".join(
        _bold(_text(part, markup, 1000), markup) if hit else _text(part, markup, 1000)
        for part, hit in highlight(alert)
        if part.strip()
    )
    if snippet:
        lines.append(snippet)
    lines.append(_text(f"ref {alert.delivery_id}", markup, 100))
    separator = "<br>\n" if markup == "html" else "\n"
    return separator.join(lines)


def digest_title(digest: Digest, markup: Markup) -> str:
    what = "rate limit" if digest.reason == "rate-limit" else "digest"
    return _text(f"Watchfloor {what}: {len(digest.alerts)} alerts", markup, 200)


def digest_body(digest: Digest, markup: Markup) -> str:
    lines = []
    for alert in digest.alerts[:DIGEST_ITEMS]:
        severity = _text(clean_line(alert.watchlist.severity, 20).upper(), markup)
        watchlist = _text(alert.watchlist.title, markup, 100)
        lines.append(f"{severity} {watchlist}: {_link(alert, markup)}")
    if len(digest.alerts) > DIGEST_ITEMS:
        lines.append(_text(f"and {len(digest.alerts) - DIGEST_ITEMS} more", markup))
    lines.append(_text(f"ref {digest.digest_id}", markup, 100))
    separator = "<br>\n" if markup == "html" else "\n"
    return separator.join(lines)
