"""The console's pages: alerts, a story, search, feeds, watch-lists and the playground."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from alerts.match import WatchListErrors, compile_matcher
from alerts.query import Alias, QueryError, parse_query
from alerts.render import highlight
from alerts.types import Alert, AlertItem, AlertWatchlist
from common.durations import parse_duration
from feeds.text import clean_text
from web.deps import TRIAGE_ROLES, config, db, role_required
from web.present import view
from worker import archive, read
from worker.archive import TRIAGE_STATES, AlertFilter
from worker.backtest import compare_query
from worker.models import utcnow
from worker.store import users as users_store

blueprint = Blueprint("pages", __name__)
SEVERITIES = ("low", "medium", "high", "critical")
LANGUAGES = (("en", "English"), ("ko", "Korean"), ("ru", "Russian"))
STATS_WINDOW = timedelta(days=30)
PLAYGROUND_MAX = 20_000


def alert_filter(args: Any, user_id: int | None) -> AlertFilter:
    """The filter form's fields, each checked against what it may hold (the URL is input)."""
    cfg = config()
    watchlists = tuple(w for w in args.getlist("watchlist") if cfg.watchlist(w))
    source = args.get("source", "")
    feeds: tuple[str, ...] = ()
    if source.startswith("tag:"):
        feeds = tuple(f.id for f in cfg.feeds if source[4:] in f.tags) or ("-",)
    elif source:
        feeds = (source,)
    return AlertFilter(
        watchlists=watchlists,
        severities=tuple(s for s in args.getlist("severity") if s in SEVERITIES),
        feeds=feeds,
        languages=tuple(lang for lang in args.getlist("language") if lang in dict(LANGUAGES)),
        since=_since(args.get("since", "")),
        triage=args.get("triage") if args.get("triage") in TRIAGE_STATES else None,
        q=args.get("q", "")[:200],
        user_id=user_id,
    )


def _since(value: str) -> datetime | None:
    """``since`` is a look-back (``24h``, ``7d``) or an ISO date; anything else is no filter."""
    if not value:
        return None
    try:
        return utcnow() - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


@blueprint.get("/")
def alerts() -> str:
    filters = alert_filter(request.args, current_user.record.id)
    page = archive.alerts(db(), filters, request.args.get("cursor"), limit=50)
    cfg = config()
    query = request.args.to_dict(flat=False)
    query.pop("cursor", None)
    older = None
    if page.next_cursor:
        older = url_for("pages.alerts", **{**query, "cursor": [page.next_cursor]})  # type: ignore[arg-type]  # url_for takes lists: repeated parameters
    return render_template(
        "alerts.html",
        older_url=older,
        alerts=[view(row, cfg) for row in page.rows],
        next_cursor=page.next_cursor,
        filters=filters,
        source=request.args.get("source", ""),
        since=request.args.get("since", ""),
        watchlists=cfg.watchlists,
        feeds=cfg.feeds,
        tags=sorted({t for f in cfg.feeds for t in f.tags}),
        severities=SEVERITIES,
        languages=LANGUAGES,
        triage_states=TRIAGE_STATES,
        latest=archive.latest_alert_id(db()),
        live=not request.args.get("cursor"),
    )


@blueprint.get("/stories/<int:story_id>")
def story(story_id: int) -> str:
    found = archive.story(db(), story_id)
    if found is None:
        abort(404)
    cfg = config()
    from worker.store import triage as triage_store

    history = triage_store.history(db(), [a.match_id for a in found.alerts])
    return render_template(
        "story.html",
        story=found,
        alerts=[view(row, cfg) for row in found.alerts],
        history=history,
        users=users_store.users(db()),
        can_triage=current_user.can_triage,
    )


@blueprint.get("/search")
def search() -> str:
    q = request.args.get("q", "")[:200]
    items = archive.search_items(db(), q) if q.strip() else []
    return render_template(
        "search.html",
        q=q,
        items=items,
        watchlists=config().watchlists,
        can_triage=current_user.can_triage,
    )


@blueprint.get("/feeds")
def feeds() -> str:
    cfg = config()
    return render_template("feeds.html", rows=read.feed_health(cfg.feeds, read.feeds(db())))


@blueprint.get("/watchlists")
def watchlists() -> str:
    stats = archive.watchlist_stats(db(), utcnow() - STATS_WINDOW)
    return render_template("watchlists.html", watchlists=config().watchlists, stats=stats)


@blueprint.get("/watchlists/<watchlist_id>")
def watchlist(watchlist_id: str) -> str:
    cfg = config()
    found = cfg.watchlist(watchlist_id)
    if found is None:
        abort(404)
    alerts_, fps = archive.watchlist_stats(db(), utcnow() - STATS_WINDOW).get(watchlist_id, (0, 0))
    recent = archive.recent_for_watchlist(db(), watchlist_id)
    return render_template(
        "watchlist.html",
        watchlist=found,
        aliases=_aliases_used(found.query, cfg.aliases),
        recent=[view(row, cfg) for row in recent],
        alerts_count=alerts_,
        false_positives=fps,
        window_days=STATS_WINDOW.days,
    )


def _aliases_used(query: str, aliases: Any) -> dict[str, tuple[str, ...]]:
    """The aliases a query uses, expanded: what ``@dprk`` stands for."""
    try:
        node = parse_query(query, aliases)
    except QueryError:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Alias):
            out[current.name] = tuple(aliases.get(current.name) or [t.text for t in current.terms])
        for value in getattr(current, "children", ()) or ():
            stack.append(value)
        for name in ("child", "left", "right"):
            if (child := getattr(current, name, None)) is not None:
                stack.append(child)
    return dict(sorted(out.items()))


@blueprint.route("/playground", methods=["GET", "POST"])
def playground() -> str:
    """Paste text, see whether and why each watch-list (or a draft query) matches it."""
    cfg = config()
    title = request.form.get("title", "")[:PLAYGROUND_MAX]
    summary = request.form.get("summary", "")[:PLAYGROUND_MAX]
    draft = request.form.get("query", "")[:PLAYGROUND_MAX]
    results: list[dict[str, Any]] = []
    error: str | None = None
    if request.method == "POST":
        results, error = _try(cfg, title, summary, draft)
    return render_template(
        "playground.html",
        title=title,
        summary=summary,
        query=draft,
        results=results,
        error=error,
        tried=request.method == "POST",
    )


def _try(cfg: Any, title: str, summary: str, draft: str) -> tuple[list[dict[str, Any]], str | None]:
    title = clean_text(title, html=False, limit=1000)
    summary = clean_text(summary, html=False, limit=20_000)
    watchlists = list(cfg.watchlists)
    if draft.strip():
        from alerts.watchlists import WatchList

        watchlists = [WatchList(id="draft", title="Draft query", query=draft, channels=())]
    try:
        matcher = compile_matcher(watchlists, cfg.aliases)
    except WatchListErrors as group:
        return [], "; ".join(f"{e.message} (column {e.column})" for e in group.errors)
    out = []
    for match in matcher.match(title, summary):
        alert = Alert(
            alert_id="playground",
            delivery_id="playground",
            created_at=utcnow(),
            watchlist=AlertWatchlist(match.watchlist_id, match.watchlist_id, "low"),
            item=AlertItem(title, "", "playground", None, summary),
            hits=match.hits,
            snippet=match.snippet,
        )
        out.append({"match": match, "snippet": highlight(alert)})
    return out, None


@blueprint.post("/watchlists/<watchlist_id>/backtest")
@role_required(*TRIAGE_ROLES)
def backtest(watchlist_id: str) -> str:
    """A candidate query over stored items, against the live one: ``+N new, -M gone``."""
    cfg = config()
    found = cfg.watchlist(watchlist_id)
    if found is None:
        abort(404)
    candidate = request.form.get("query", "")[:PLAYGROUND_MAX]
    since = request.form.get("since", "7d")
    try:
        window = parse_duration(since)
        report = compare_query(db(), cfg, found, candidate, utcnow() - window)
        error = None
    except (ValueError, WatchListErrors) as exc:
        report, error = None, _message(exc)
    return render_template(
        "backtest.html",
        watchlist=found,
        candidate=candidate,
        since=since,
        report=report,
        error=error,
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, WatchListErrors):
        return "; ".join(f"{e.message} (column {e.column})" for e in exc.errors)
    return str(exc)
