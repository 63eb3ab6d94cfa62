"""Turn a ``Digest`` (several alerts for one channel) into one email, webhook body, Slack
message or log record.

Built on the single-alert helpers of ``alerts.render``, so an alert reads the same alone or
in a digest and feed text gets the same treatment: ``clean_line`` before any header,
Jinja2 autoescape for HTML, ``mrkdwn_escape`` for Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from alerts.render import (
    SUBJECT_MAX,
    alert_context,
    as_utc,
    build_email,
    clean_line,
    iso_z,
    mrkdwn_escape,
    slack_link,
    terms,
    webhook_payload,
)
from alerts.types import Alert, AlertWatchlist, Digest
from alerts.watchlists import SEVERITY_ORDER

DIGEST_TYPE = "alert.digest.v1"  # see schema/alert.digest.v1.json
SLACK_TEXT_MAX = 3000  # Slack: characters in one section's text
SLACK_BLOCKS_MAX = 50  # Slack: blocks in one message
Group = tuple[AlertWatchlist, tuple[Alert, ...]]


def severity_rank(severity: str) -> int:
    """Higher is more severe; an unknown severity sorts last."""
    return SEVERITY_ORDER.get(severity.lower(), -1)


def by_watchlist(digest: Digest) -> list[Group]:
    """Alerts by watch-list, the most severe watch-list first (ties keep digest order),
    alerts in digest order within each."""
    found: dict[str, list[Alert]] = {}
    for alert in digest.alerts:
        found.setdefault(alert.watchlist.id, []).append(alert)
    ordered = sorted(found.values(), key=lambda a: -severity_rank(a[0].watchlist.severity))
    return [(alerts[0].watchlist, tuple(alerts)) for alerts in ordered]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def window_label(start: datetime, end: datetime, *, long: bool = False) -> str:
    """``07:30`` en dash ``08:30 UTC`` within one UTC day (dated when ``long``), else both
    dates: windows are shown in UTC, since a digest carries no time zone."""
    start, end = as_utc(start), as_utc(end)
    if start.date() == end.date():
        day = f"{start:%Y-%m-%d} " if long else ""
        return f"{day}{start:%H:%M}–{end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"


def digest_subject(digest: Digest, *, prefix: str = "") -> str:
    """``[Watchfloor digest] [HIGH] 12 alerts, 3 watch-lists, <window>: <watch-lists>`` or
    ``[Watchfloor] [HIGH] 37 more alerts (rate limit reached): <watch-lists>``.

    The top severity leads and the watch-lists follow most severe first, so a truncated
    subject still says what matters; one line, at most ~200 characters."""
    grouped = by_watchlist(digest)
    severity = f"[{clean_line(grouped[0][0].severity, 20).upper()}] " if grouped else ""
    if digest.reason == "rate-limit":
        count = _plural(len(digest.alerts), "more alert")
        head = f"[Watchfloor] {severity}{count} (rate limit reached)"
    else:
        count = _plural(len(digest.alerts), "alert")
        watchlists = _plural(len(grouped), "watch-list")
        window = window_label(digest.window_start, digest.window_end)
        head = f"[Watchfloor digest] {severity}{count}, {watchlists}, {window}"
    titles = ", ".join(clean_line(watchlist.title, 100) for watchlist, _ in grouped)
    lead = f"{clean_line(prefix, 50)} " if prefix.strip() else ""
    return clean_line(lead + head + (f": {titles}" if titles else ""), SUBJECT_MAX)


# --- email -------------------------------------------------------------------------------


def _digest_context(digest: Digest, subject: str) -> dict[str, object]:
    return {
        "subject": subject,
        "reason": digest.reason,
        "count": len(digest.alerts),
        "window": window_label(digest.window_start, digest.window_end, long=True),
        "digest_id": clean_line(digest.digest_id, 100),
        "groups": [
            {
                "watchlist": clean_line(watchlist.title),
                "severity": clean_line(watchlist.severity, 20).upper(),
                "alerts": [alert_context(alert) for alert in alerts],
            }
            for watchlist, alerts in by_watchlist(digest)
        ],
    }


def render_digest_email(
    digest: Digest,
    *,
    sender: str,
    to: Sequence[str],
    templates_dir: str | None = None,
    subject_prefix: str = "",
) -> EmailMessage:
    """One multipart message for the whole digest; its Message-ID is the digest id, the
    same on every retry. Templates ``digest.txt``/``digest.html``, overridable like
    ``email.*`` from ``templates_dir``."""
    subject = digest_subject(digest, prefix=subject_prefix)
    return build_email(
        "digest",
        _digest_context(digest, subject),
        sender=sender,
        to=to,
        templates_dir=templates_dir,
        date=digest.window_end,
        message_id=digest.digest_id,
        headers={"X-Watchfloor-Digest-Id": digest.digest_id},
    )


# --- webhook -----------------------------------------------------------------------------


def digest_payload(digest: Digest) -> dict[str, Any]:
    """The ``alert.digest.v1`` body, documented in ``alerts/schema/alert.digest.v1.json``:
    each alert is the ``data`` object of ``alert.created.v1``, in digest order."""
    data = {
        "digest_id": digest.digest_id,
        "reason": digest.reason,
        "window": {"start": iso_z(digest.window_start), "end": iso_z(digest.window_end)},
        "alerts": [webhook_payload(alert)["data"] for alert in digest.alerts],
    }
    return {"type": DIGEST_TYPE, "timestamp": iso_z(digest.window_end), "data": data}


# --- slack -------------------------------------------------------------------------------


def _slack_line(alert: Alert) -> str:
    about = mrkdwn_escape(f"{clean_line(alert.item.feed_id, 100)} · {', '.join(terms(alert))}")
    line = f"• {slack_link(alert)} · {about}"
    if len(line) > SLACK_TEXT_MAX:  # a huge URL or escaped title: drop the link, then cut
        line = f"• {mrkdwn_escape(clean_line(alert.item.title, 300))} · {about}"
    return line if len(line) <= SLACK_TEXT_MAX else line[: SLACK_TEXT_MAX - 1] + "…"


def _slack_chunks(digest: Digest) -> list[tuple[str, int]]:
    """Section texts of at most SLACK_TEXT_MAX characters, each with its alert count;
    every watch-list starts a new section under its heading."""
    chunks: list[tuple[str, int]] = []
    for watchlist, alerts in by_watchlist(digest):
        severity = clean_line(watchlist.severity, 20).upper()
        text = mrkdwn_escape(f"*[{severity}] {clean_line(watchlist.title)}* ({len(alerts)})")
        count = 0
        for line in map(_slack_line, alerts):
            if len(text) + 1 + len(line) > SLACK_TEXT_MAX:
                chunks.append((text, count))
                text, count = "", 0
            text, count = f"{text}\n{line}" if text else line, count + 1
        chunks.append((text, count))
    return chunks


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_digest_payload(digest: Digest) -> dict[str, Any]:
    """An incoming-webhook body: one section per watch-list (split at Slack's size limit).
    Past Slack's 50 blocks the last block says how many alerts are not shown."""
    subject = mrkdwn_escape(digest_subject(digest))
    chunks = _slack_chunks(digest)
    room = SLACK_BLOCKS_MAX - 2  # the heading, and a note when some do not fit
    blocks = [_section(f"*{subject}*")] + [_section(text) for text, _ in chunks[:room]]
    if hidden := sum(count for _, count in chunks[room:]):
        note = f"{_plural(hidden, 'more alert')} not shown: Slack allows 50 blocks a message."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"text": subject, "blocks": blocks}


# --- log ---------------------------------------------------------------------------------


def digest_log_fields(digest: Digest) -> dict[str, str | int]:
    """The digest as flat key/values; each alert is logged with ``render.log_fields``."""
    return {
        "digest_id": clean_line(digest.digest_id, 100),
        "reason": clean_line(digest.reason, 20),
        "count": len(digest.alerts),
        "window_start": iso_z(digest.window_start) or "",
        "window_end": iso_z(digest.window_end) or "",
        "watchlists": ",".join(clean_line(w.id, 100) for w, _ in by_watchlist(digest)),
    }
