"""``watchfloor eval export`` then ``watchfloor backtest --labels``: the desk's triage on a
real store (real polls, SQLite and PostgreSQL) becomes the labelled set a candidate config
is scored on; and the pure label and score functions they share."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alerts.match import compile_matcher
from alerts.watchlists import WatchList
from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from worker import pipeline
from worker import runtime as runtime_module
from worker.backtest import (
    KEPT_AFTER,
    Judgement,
    LabelledItem,
    LabelsError,
    alert_judgement,
    desk_labels,
    labelled_items,
    load_labels,
    missed_judgement,
    score,
)
from worker.cli import main
from worker.models import Item, MatchRow
from worker.read import AlertVerdict, MissedFlag, StoredItem
from worker.runtime import build_runtime
from worker.settings import load_settings
from worker.store import triage
from worker.store import users as users_store

M = "missile-tests"
QUERY = 'missile AND (Pyongyang OR "North Korea")'
ITEMS = {
    "kept": ("North Korea fires ballistic missile toward the East Sea", "Launched near Pyongyang."),
    "kick": ("Pyongyang striker's missile of a free kick stuns Japan", "A 30-metre strike."),
    "gym": ("North Korea's fitness craze: the missile squat", "Gyms fill up in the capital."),
    "icbm": ("Hwasong-19 ICBM flies 86 minutes, Pyongyang says", "Its longest flight yet."),
    "sat": ("North Korea readies reconnaissance satellite at Sohae", "Fuel trucks at the pad."),
    "stocks": ("Seoul stocks close higher on chip exports", "KOSPI up 1.2%."),
}


def _watchlists(query: str, exclude: str | None = None) -> dict[str, Any]:
    missile = {"id": M, "title": "Missile tests", "query": query, "channels": ["console"]}
    satellite = {"id": "satellites", "title": "S", "query": "satellite", "channels": ["console"]}
    return {"watchlists": [missile | ({"exclude": exclude} if exclude else {}), satellite]}


def _desk(tmp_path: Path, db_url: str) -> Path:
    """A real poll raises the alerts; an analyst marks two false positive, acknowledges one
    and flags an item the watch-list missed; the satellite alert stays untouched."""
    with FeedServer() as feeds:
        feeds.publish("wire", *(FeedEntry(k, t, s) for k, (t, s) in ITEMS.items()))
        live = write_config(
            tmp_path / "live",
            feeds=[{"id": "wire", "url": feeds.url("wire")}],
            watchlists=_watchlists(QUERY),
        )
        settings = replace(
            load_settings(), config_dir=live, database_url=db_url, allow_private_urls=True
        )
        rt = build_runtime(settings)
        assert len(pipeline.poll_feed(rt, "wire").matches) == 4
    now = datetime.now(UTC)
    with rt.sessions.begin() as session:
        key = {title: key for key, (title, _) in ITEMS.items()}
        alerts = {
            key[t]: i for t, i in session.execute(sa.select(Item.title, MatchRow.id).join(MatchRow))
        }
        items = {key[t]: i for t, i in session.execute(sa.select(Item.title, Item.id))}
        analyst = users_store.add_user(session, "ana", "analyst", "correct horse battery", now)
        fp = [alerts["kick"], alerts["gym"]]
        triage.apply(session, fp, analyst.id, triage.Action.FALSE_POSITIVE, now, "not a launch")
        triage.apply(session, [alerts["kept"]], analyst.id, triage.Action.ACKNOWLEDGE, now)
        assert triage.flag_missed(session, items["icbm"], M, analyst.id, "an ICBM launch", now)
    rt.engine.dispose()
    return live


def _cli(
    command: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, str, str]:
    """``watchfloor COMMAND`` in this process, on a fresh runtime for ``env``."""
    for name in [k for k in os.environ if k.startswith("WATCHFLOOR_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runtime_module, "_runtime", None)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(command)
    finally:
        if runtime_module._runtime is not None:
            runtime_module._runtime[1].engine.dispose()
        root.handlers[:], root.level = handlers, level
    out, err = capsys.readouterr()
    return code, out, err


def test_export_then_backtest_shows_precision_and_recall_move(
    tmp_path: Path, engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    live = _desk(tmp_path, db_url)
    env = {
        "WATCHFLOOR_CONFIG_DIR": str(live),
        "WATCHFLOOR_DATABASE_URL": db_url,
        "WATCHFLOOR_VAR_DIR": str(tmp_path / "var"),
        "WATCHFLOOR_BROKER_URL": "memory://",
    }
    labels = tmp_path / "labels.jsonl"
    code, out, _ = _cli(["eval", "export", "--out", str(labels)], env, monkeypatch, capsys)
    assert code == 0 and "4 items (2 positive, 2 negative labels)" in out
    exported = {i.title: i for i in load_labels(labels.read_text(), str(labels))}
    by_key = {key: exported.get(title) for key, (title, _) in ITEMS.items()}
    assert by_key["sat"] is None and by_key["stocks"] is None  # fresh, unacknowledged; no alert
    for key, positive in [("kept", True), ("kick", False), ("gym", False), ("icbm", True)]:
        item = by_key[key]
        assert item is not None and item.judged == (M,) and item.feed == "wire"
        assert item.labels == ((M,) if positive else ()), key
    missed_id = exported[ITEMS["icbm"][0]].id
    code, out, err = _cli(["eval", "export"], env, monkeypatch, capsys)
    assert code == 0 and out == labels.read_text() and err.startswith("4 items")

    def backtest(*extra: str) -> dict[str, Any]:
        argv = ["backtest", "--labels", str(labels), "--json", *extra]
        code, out, err = _cli(argv, env, monkeypatch, capsys)
        assert code == 0, err
        assert err == "4 labelled items in " + str(labels) + "\n"
        [row] = map(json.loads, out.splitlines())  # the satellite watch-list has no label
        assert row["watchlist"] == M and row["judged"] == 4
        return dict(row)

    alone = backtest()
    assert alone["candidate"] is None
    assert (alone["live"]["precision"], alone["live"]["recall"]) == (round(1 / 3, 4), 0.5)
    assert alone["live"]["tp"] == 1 and alone["live"]["fp"] == 2 and alone["live"]["fn"] == 1

    # excluding the false positives' terms: precision rises to 1, the missed item stays missed
    exclude = '"free kick" OR fitness'
    excluding = write_config(tmp_path / "excluding", watchlists=_watchlists(QUERY, exclude))
    row = backtest("--config-dir", str(excluding))
    assert row["live"] == alone["live"]
    assert (row["candidate"]["precision"], row["candidate"]["recall"]) == (1.0, 0.5)
    assert row["candidate"]["missed"] == [missed_id]

    # and a term for the missed item: recall rises to 1 as well
    wider = '(missile OR ICBM) AND (Pyongyang OR "North Korea")'
    tuned = write_config(tmp_path / "tuned", watchlists=_watchlists(wider, exclude))
    row = backtest("--config-dir", str(tuned))
    assert (row["candidate"]["precision"], row["candidate"]["recall"]) == (1.0, 1.0)
    assert row["candidate"]["tp"] == 2 and row["candidate"]["fp"] == row["candidate"]["fn"] == 0

    argv = ["backtest", "--labels", str(labels), "--config-dir", str(excluding)]
    code, out, _ = _cli(argv, env, monkeypatch, capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["watch-list", "judged", "live", "P"]
    assert lines[1].split() == [M, "4", "0.33", "1.00", "0.50", "0.50", "1/2/1", "1/0/1"]
    assert lines[2] == f"  {M}: missed {missed_id}"


def test_labels_that_do_not_parse_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    live = write_config(tmp_path / "live")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"id": "a", "labels": [M], "title": "t"}) + "\n{oops\n")
    env = {"WATCHFLOOR_CONFIG_DIR": str(live), "WATCHFLOOR_VAR_DIR": str(tmp_path / "var")}
    code, out, err = _cli(["backtest", "--labels", str(labels)], env, monkeypatch, capsys)
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"error: {labels}:2: ")


# the pure functions

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
ITEM = StoredItem(7, "wire", "North Korea fires ballistic missile", "Near Pyongyang.")
OTHER = StoredItem(3, "desk", "Pyongyang fitness craze: the missile squat", "")


def _alert(
    item: StoredItem = ITEM,
    watchlist: str = M,
    age: timedelta = timedelta(hours=1),
    acknowledged: bool = False,
    false_positive: bool = False,
) -> AlertVerdict:
    at = NOW - age
    return AlertVerdict(item, watchlist, at, acknowledged, false_positive, at)


def test_a_false_positive_is_a_negative_and_a_kept_alert_a_positive() -> None:
    fp = alert_judgement(_alert(false_positive=True, acknowledged=True), NOW)
    assert fp is not None and (fp.positive, fp.explicit) == (False, True)
    acked = alert_judgement(_alert(acknowledged=True), NOW)
    assert acked is not None and (acked.positive, acked.explicit) == (True, False)
    settled = alert_judgement(_alert(age=KEPT_AFTER), NOW)
    assert settled is not None and settled.positive
    assert alert_judgement(_alert(age=KEPT_AFTER - timedelta(minutes=1)), NOW) is None
    missed = missed_judgement(MissedFlag(ITEM, M, NOW))
    assert (missed.positive, missed.explicit) == (True, True)


def test_one_line_per_item_with_every_watchlist_judged_on_it() -> None:
    alerts = [
        _alert(acknowledged=True),
        _alert(watchlist="leaders", false_positive=True),
        _alert(item=OTHER, false_positive=True),
        _alert(item=OTHER, watchlist="fresh"),  # fresh and untouched: no label
    ]
    missed = [MissedFlag(OTHER, "fitness", NOW)]
    assert desk_labels(alerts, missed, NOW) == [
        LabelledItem(
            id="item-3",
            labels=("fitness",),
            judged=("fitness", M),
            feed="desk",
            title=OTHER.title,
            summary="",
        ),
        LabelledItem(
            id="item-7",
            labels=(M,),
            judged=("leaders", M),
            feed="wire",
            title=ITEM.title,
            summary=ITEM.summary,
        ),
    ]


def test_an_analysts_judgement_beats_a_kept_alert_and_the_later_one_wins() -> None:
    def judged(positive: bool, explicit: bool, minutes: int) -> Judgement:
        return Judgement(ITEM, M, positive, explicit, NOW + timedelta(minutes=minutes))

    [item] = labelled_items([judged(False, True, 0), judged(True, False, 5)])
    assert item.labels == () and item.judged == (M,)
    [item] = labelled_items([judged(True, True, 9), judged(False, True, 5)])
    assert item.labels == (M,)
    [item] = labelled_items([judged(True, True, 5), judged(False, True, 9)])
    assert item.labels == ()


def test_score_counts_each_item_only_for_the_watchlists_judged_on_it() -> None:
    watchlists = [
        WatchList(id=M, title="M", query=QUERY),
        WatchList(id="wire-only", title="W", query="missile", sources=("wire",)),
    ]
    matcher = compile_matcher(watchlists, {})
    items = [
        LabelledItem(id="a", labels=(M,), judged=(M,), title=ITEM.title),
        LabelledItem(id="b", labels=(), judged=(M,), title=OTHER.title),
        LabelledItem(id="c", labels=(M,), judged=(M, "wire-only"), title="Seoul stocks"),
        LabelledItem(id="d", labels=("wire-only",), judged=("wire-only",), title="missile"),
        LabelledItem(id="e", labels=("wire-only",), feed="wire", title="missile"),  # every one
    ]
    scores = score(items, matcher, [M, "wire-only"])
    assert (scores[M].tp, scores[M].fp, scores[M].fn) == (("a",), ("b",), ("c",))
    assert scores[M].judged == 4 and scores[M].precision == scores[M].recall == 0.5
    wire = scores["wire-only"]  # d has no feed: a watch-list limited to one cannot fire
    assert (wire.tp, wire.fp, wire.fn, wire.judged) == (("e",), (), ("d",), 3)


def test_labels_round_trip_and_a_bad_line_is_named() -> None:
    item = LabelledItem(id="x", labels=(M,), judged=(M, "b"), feed="wire", title="북한의 미사일")
    line = item.model_dump_json(exclude_none=True)
    assert line.startswith('{"id":"x","labels":["missile-tests"],"judged":')
    assert "북한" in line  # written as UTF-8, like the shipped set
    assert load_labels(line + "\n\n" + line, "f") == [item, item]
    with pytest.raises(LabelsError, match=r"^f:2: labels: Field required$"):
        load_labels(line + '\n{"id": "y", "title": "t"}', "f")
    with pytest.raises(LabelsError, match=r"^f:1: .*in judged too"):
        load_labels('{"id": "y", "labels": ["a"], "judged": ["b"], "title": "t"}', "f")
    with pytest.raises(LabelsError, match=r"^f:1: lable: Extra inputs"):
        load_labels('{"id": "y", "labels": [], "lable": ["a"], "title": "t"}', "f")
