"""Triage on an alert or a whole story, and flagging an item a watch-list missed.

Every handler is a POST with a CSRF token, for analysts and admins only (checked here, on
the server); each action is recorded with who and when (``worker.store.triage``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from web.deps import TRIAGE_ROLES, config, db, role_required, write
from worker import archive
from worker.models import utcnow
from worker.store import triage as triage_store
from worker.store.triage import Action, TriageError

blueprint = Blueprint("triage", __name__)


def _action() -> Action:
    try:
        return Action(request.form.get("action", ""))
    except ValueError:
        abort(400)


def _apply(match_ids: list[int]) -> None:
    action = _action()
    detail = request.form.get("detail", "")
    assignee = request.form.get("assignee") or None
    try:
        with write() as session:
            triage_store.apply(
                session, match_ids, current_user.record.id, action, utcnow(), detail, assignee
            )
    except TriageError as exc:
        flash(str(exc), "error")


@blueprint.post("/alerts/<int:match_id>/triage")
@role_required(*TRIAGE_ROLES)
def alert(match_id: int) -> Any:
    found = archive.alert(db(), match_id)
    if found is None:
        abort(404)
    _apply([match_id])
    if found.story_id is None:
        return redirect(url_for("pages.alerts"))
    return redirect(url_for("pages.story", story_id=found.story_id) + f"#alert-{match_id}")


@blueprint.post("/stories/<int:story_id>/triage")
@role_required(*TRIAGE_ROLES)
def story(story_id: int) -> Any:
    match_ids = archive.match_ids_of_story(db(), story_id)
    if not match_ids:
        abort(404)
    _apply(match_ids)
    return redirect(url_for("pages.story", story_id=story_id))


@blueprint.post("/items/<int:item_id>/missed")
@role_required(*TRIAGE_ROLES)
def missed(item_id: int) -> Any:
    watchlist_id = request.form.get("watchlist", "")
    if config().watchlist(watchlist_id) is None:
        abort(400)
    with write() as session:
        made = triage_store.flag_missed(
            session,
            item_id,
            watchlist_id,
            current_user.record.id,
            request.form.get("note", ""),
            utcnow(),
        )
    flash("Flagged as missed." if made else "Already flagged.", "info")
    return redirect(url_for("pages.search", q=request.form.get("q", "")))
