"""``GET /api/v1/alerts`` and the Atom feed of a watch-list, for Bearer tokens.

Each alert carries the webhook payload's ``data`` (``alerts/schema/alert.created.v1.json``)
plus its triage state. The Atom feed also takes ``?token=`` for feed readers that cannot
send a header.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, url_for

from alerts.render import iso_z
from web.deps import config, db, write
from web.pages import alert_filter
from web.present import api_alert
from worker import archive
from worker.models import utcnow
from worker.store import users as users_store
from worker.store.users import UserRecord

blueprint = Blueprint("api", __name__)
ATOM = "http://www.w3.org/2005/Atom"


def _token_user(allow_query: bool = False) -> UserRecord | None:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token and allow_query:
        token = request.args.get("token", "")
    if not token:
        return None
    with write() as session:  # it records when the token was last used
        return users_store.token_user(session, token, utcnow())


@blueprint.get("/api/v1/alerts")
def alerts() -> Any:
    user = _token_user()
    if user is None:
        return jsonify(error="a valid Bearer token is required"), 401
    args = request.args
    filters = alert_filter(_api_args(args), user.id)
    limit = _limit(args.get("limit", "50"))
    page = archive.alerts(db(), filters, args.get("cursor"), limit=limit)
    cfg = config()
    body = {"alerts": [api_alert(row, cfg) for row in page.rows], "next_cursor": page.next_cursor}
    return jsonify(body)


class _Args(dict[str, list[str]]):
    """The API's filter names mapped onto the alerts page's (``feed`` is ``source``)."""

    def get(self, key: str, default: Any = None) -> Any:
        values = super().get(key)
        return values[0] if values else default

    def getlist(self, key: str) -> list[str]:
        return list(super().get(key) or [])


def _api_args(args: Any) -> _Args:
    out = _Args()
    for key in ("watchlist", "severity", "since", "q", "language", "triage"):
        out[key] = args.getlist(key)
    out["source"] = args.getlist("feed")[:1]
    return out


def _limit(value: str) -> int:
    return max(1, min(int(value), archive.PAGE_MAX)) if value.isdigit() else 50


@blueprint.get("/watchlists/<watchlist_id>/feed.atom")
def watchlist_feed(watchlist_id: str) -> Any:
    if _token_user(allow_query=True) is None:
        return Response("a valid token is required\n", 401, {"WWW-Authenticate": "Bearer"})
    cfg = config()
    watchlist = cfg.watchlist(watchlist_id)
    if watchlist is None:
        abort(404)
    page = archive.alerts(db(), archive.AlertFilter(watchlists=(watchlist_id,)), limit=50)
    feed = ET.Element("feed", xmlns=ATOM)
    ET.SubElement(feed, "title").text = f"Watchfloor: {watchlist.title}"
    ET.SubElement(feed, "id").text = f"urn:watchfloor:watchlist:{watchlist_id}"
    newest = page.rows[0].created_at if page.rows else utcnow()
    ET.SubElement(feed, "updated").text = iso_z(newest)
    ET.SubElement(
        feed,
        "link",
        rel="self",
        href=url_for("api.watchlist_feed", watchlist_id=watchlist_id, _external=True),
    )
    for row in page.rows:
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "title").text = row.title
        ET.SubElement(entry, "id").text = f"urn:watchfloor:alert:{row.match_id}"
        ET.SubElement(entry, "updated").text = iso_z(row.created_at)
        if row.url.startswith(("http://", "https://")):
            ET.SubElement(entry, "link", rel="alternate", href=row.url)
        if row.story_id is not None:
            story = url_for("pages.story", story_id=row.story_id, _external=True)
            ET.SubElement(entry, "link", rel="related", href=story)
        ET.SubElement(ET.SubElement(entry, "author"), "name").text = row.feed_id
        ET.SubElement(entry, "summary").text = row.snippet  # text: escaped by ElementTree
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, 200, {"Content-Type": "application/atom+xml; charset=utf-8"})
