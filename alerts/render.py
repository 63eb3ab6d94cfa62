"""Turn an ``Alert`` into what each channel sends: email, webhook JSON, Slack blocks, a log line.

Feed text is hostile. Every value from a feed goes through ``clean_line`` (control and
line-separator characters removed, length capped) before it reaches a header, and HTML
is rendered by Jinja2 with autoescape on, so markup in a title stays text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from alerts.types import Alert, Hit

WEBHOOK_TYPE = "alert.created.v1"  # the version is part of the event type; see schema/
SUBJECT_MAX = 200
SNIPPET_MAX = 1000
TITLE_MAX = 1000
URL_MAX = 2000
MATCHES_MAX = 50
_STRIP_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
_SPACES = re.compile(r"\s+")
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9_=+-]")  # the email package mangles a Message-ID
Segment = tuple[str, bool]  # (text, is_hit)


def clean_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """One safe line: control, format and line-separator characters become spaces; capped."""
    chars = (" " if unicodedata.category(c) in _STRIP_CATEGORIES else c for c in text)
    line = _SPACES.sub(" ", "".join(chars)).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def safe_url(url: str) -> str:
    """The URL if it is http(s), else "": no ``javascript:`` or ``data:`` links in alerts."""
    url = clean_line(url, URL_MAX)
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    return url if scheme in ("http", "https") else ""


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_z(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat().replace("+00:00", "Z")


def _field_text(alert: Alert, field: str) -> str:
    return {"title": alert.item.title, "summary": alert.item.summary}.get(field, "")


def _needles(alert: Alert) -> list[str]:
    """What to highlight: the exact text each hit covered, plus the term as written."""
    found = {hit.term.casefold(): hit.term for hit in alert.hits}
    for hit in alert.hits:
        covered = _field_text(alert, hit.field)[hit.start : hit.end]
        found.setdefault(covered.casefold(), covered)
    return sorted((n for n in found.values() if n.strip()), key=len, reverse=True)


def highlight(alert: Alert, text: str | None = None) -> list[Segment]:
    """Split a snippet into plain and hit segments (case-insensitive, whitespace-tolerant)."""
    text = clean_line(alert.snippet if text is None else text, SNIPPET_MAX)
    needles = _needles(alert)
    if not needles or not text:
        return [(text, False)] if text else []
    alternatives = (r"\s+".join(map(re.escape, n.split())) for n in needles)
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)
    segments: list[Segment] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            segments.append((text[pos : m.start()], False))
        segments.append((m.group(), True))
        pos = m.end()
    if pos < len(text):
        segments.append((text[pos:], False))
    return segments


def story_languages(alert: Alert) -> list[str]:
    """The languages the alert's story was reported in, when more than one."""
    languages = [clean_line(lang, 8) for lang in alert.story.languages] if alert.story else []
    return languages if len(languages) > 1 else []


def also_reported_by(alert: Alert) -> tuple[str, ...]:
    """Other sources of the same story: given, or the story's sources minus this feed."""
    if alert.also_reported_by or alert.story is None:
        return alert.also_reported_by
    return tuple(s for s in alert.story.sources if s != alert.item.feed_id)


def terms(alert: Alert) -> list[str]:
    return list(dict.fromkeys(clean_line(hit.term, 100) for hit in alert.hits))


# --- email -------------------------------------------------------------------------------


def email_subject(alert: Alert, *, prefix: str = "") -> str:
    """``[SEVERITY] watch-list title: item title``, one line, at most ~200 characters."""
    severity = clean_line(alert.watchlist.severity, 20).upper()
    watchlist = clean_line(alert.watchlist.title)
    title = clean_line(alert.item.title)
    head = f"{clean_line(prefix, 50)} " if prefix.strip() else ""
    update = "Update: " if alert.update else ""
    return clean_line(f"{head}[{severity}] {update}{watchlist}: {title}", SUBJECT_MAX)


@lru_cache(maxsize=16)
def template_environment(templates_dir: str | None) -> Environment:
    """Package templates, overridable one file at a time from ``templates_dir``."""
    loaders: list[BaseLoader] = [PackageLoader("alerts", "templates")]
    if templates_dir:
        loaders.insert(0, FileSystemLoader(templates_dir))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def alert_context(alert: Alert) -> dict[str, object]:
    """Template values of one alert, each cleaned: shared by the alert and digest emails."""
    published = alert.item.published_at
    return {
        "severity": clean_line(alert.watchlist.severity, 20).upper(),
        "watchlist": clean_line(alert.watchlist.title),
        "title": clean_line(alert.item.title, 500),
        "url": safe_url(alert.item.url),
        "feed_id": clean_line(alert.item.feed_id, 100),
        "language": clean_line(alert.item.language or "", 8),
        "published": as_utc(published).strftime("%Y-%m-%d %H:%M UTC") if published else "",
        "segments": highlight(alert),
        "terms": terms(alert),
        "also_reported_by": [clean_line(s, 200) for s in also_reported_by(alert)],
        "languages": story_languages(alert),
        "alert_id": clean_line(alert.alert_id, 100),
        "update": clean_line(alert.update, 200) if alert.update else "",
    }


def build_email(
    template: str,
    context: dict[str, object],
    *,
    sender: str,
    to: Sequence[str],
    templates_dir: str | None,
    date: datetime,
    message_id: str,
    headers: dict[str, str],
) -> EmailMessage:
    """``template``.txt + .html as one multipart message; ``context["subject"]`` must be clean
    already. ``message_id`` (the idempotency key) keeps only characters safe in a msg-id."""
    env = template_environment(templates_dir)
    msg = EmailMessage(policy=default_policy.clone(max_line_length=998))
    msg["Subject"] = str(context["subject"])
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(as_utc(date))
    msg["Message-ID"] = f"<{_MSGID_UNSAFE.sub('-', message_id)[:100]}@watchfloor>"
    for name, value in headers.items():
        msg[name] = clean_line(value, 100)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    msg.set_content(env.get_template(f"{template}.txt").render(context))
    msg.add_alternative(env.get_template(f"{template}.html").render(context), subtype="html")
    return msg


def render_email(
    alert: Alert,
    *,
    sender: str,
    to: Sequence[str],
    templates_dir: str | None = None,
    subject_prefix: str = "",
) -> EmailMessage:
    """A multipart text + HTML message whose Message-ID is the delivery id (same on retries).

    ``sender`` and ``to`` come from validated config; feed text reaches only the Subject,
    through ``clean_line`` and the email package's header folding.
    """
    subject = email_subject(alert, prefix=subject_prefix)
    return build_email(
        "email",
        {"subject": subject, **alert_context(alert)},
        sender=sender,
        to=to,
        templates_dir=templates_dir,
        date=alert.created_at,
        message_id=alert.delivery_id,
        headers={"X-Watchfloor-Alert-Id": alert.alert_id},
    )


# --- webhook -----------------------------------------------------------------------------


def _match(hit: Hit) -> dict[str, str]:
    return {"term": hit.term, "field": hit.field, "snippet": hit.snippet}


def _story(alert: Alert) -> dict[str, object] | None:
    story, others = alert.story, also_reported_by(alert)
    if story is None and not others:
        return None
    out: dict[str, object] = {"also_reported_by": list(others)}
    if story is not None:
        out |= {
            "id": story.id,
            "first_seen": iso_z(story.first_seen),
            "sources": list(story.sources),
            "languages": list(story_languages(alert)),
        }
    return out


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The ``alert.created.v1`` body, documented in ``alerts/schema/alert.created.v1.json``."""
    item = alert.item
    data: dict[str, object] = {
        "alert_id": alert.alert_id,
        "watchlist": {
            "id": alert.watchlist.id,
            "title": alert.watchlist.title,
            "severity": alert.watchlist.severity,
        },
        "item": {  # one-line fields stay one line, in case a receiver logs them raw
            "title": clean_line(item.title, TITLE_MAX),
            "url": clean_line(item.url, URL_MAX),
            "feed_id": item.feed_id,
            "published_at": iso_z(item.published_at),
            "summary": item.summary,
            "language": item.language,
        },
        "snippet": alert.snippet,
        "matches": [_match(hit) for hit in alert.hits[:MATCHES_MAX]],
    }
    if story := _story(alert):
        data["story"] = story
    if alert.update:
        data["update"] = alert.update
    return {"type": WEBHOOK_TYPE, "timestamp": iso_z(alert.created_at), "data": data}


# --- slack -------------------------------------------------------------------------------


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters; stops ``<!channel>`` and fake links from feeds."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(alert: Alert) -> str:
    """The item title linked to its URL in mrkdwn; the bare title when the URL is unsafe."""
    title = mrkdwn_escape(clean_line(alert.item.title, 300))
    url = safe_url(alert.item.url)
    return f"<{mrkdwn_escape(url).replace('|', '%7C')}|{title}>" if url else title


def _slack_snippet(alert: Alert) -> str:
    parts = (f"*{mrkdwn_escape(t)}*" if hit else mrkdwn_escape(t) for t, hit in highlight(alert))
    return "> " + "".join(parts)


def _slack_context(alert: Alert) -> str:
    language = f" ({clean_line(alert.item.language, 8)})" if alert.item.language else ""
    feed = f"feed {clean_line(alert.item.feed_id, 100)}{language}"
    parts = [feed, "matched " + ", ".join(terms(alert))]
    if others := also_reported_by(alert):
        also = ", ".join(clean_line(s, 100) for s in others[:10])
        parts.append(f"also reported by {also}")
    return mrkdwn_escape(" · ".join(parts))


def slack_payload(alert: Alert) -> dict[str, Any]:
    """An incoming-webhook body: blocks for the client, ``text`` for notifications."""
    severity = clean_line(alert.watchlist.severity, 20).upper()
    update = "Update: " if alert.update else ""
    heading = mrkdwn_escape(f"[{severity}] {update}{clean_line(alert.watchlist.title)}")
    blocks: list[dict[str, object]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{heading}*\n{slack_link(alert)}"},
        },
    ]
    if alert.snippet.strip():
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_snippet(alert)}}
        )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_context(alert)}]}
    )
    return {"text": mrkdwn_escape(email_subject(alert)), "blocks": blocks}


# --- log ---------------------------------------------------------------------------------


def log_fields(alert: Alert) -> dict[str, str]:
    """The alert as flat key/values for a structured logger (each value one clean line)."""
    return {
        "alert_id": clean_line(alert.alert_id, 100),
        "delivery_id": clean_line(alert.delivery_id, 100),
        "watchlist": clean_line(alert.watchlist.id, 100),
        "severity": clean_line(alert.watchlist.severity, 20),
        "feed": clean_line(alert.item.feed_id, 100),
        "language": clean_line(alert.item.language or "", 8),
        "title": clean_line(alert.item.title),
        "url": clean_line(alert.item.url, URL_MAX),
        "terms": ",".join(terms(alert)),
        **({"update": clean_line(alert.update, 200)} if alert.update else {}),
    }


def _logfmt_value(value: str) -> str:
    plain = value and not re.search(r'[\s"=\\]', value)
    return value if plain else json.dumps(value, ensure_ascii=False)


def log_line(alert: Alert) -> str:
    """``alert.created key=value ...`` in logfmt: one line whatever the feed text holds."""
    pairs = (f"{k}={_logfmt_value(v)}" for k, v in log_fields(alert).items())
    return "alert.created " + " ".join(pairs)
