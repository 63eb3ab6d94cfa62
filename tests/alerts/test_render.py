from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.render import (
    email_subject,
    highlight,
    log_line,
    render_email,
    slack_payload,
    webhook_payload,
)
from alerts.types import AlertStory, Hit
from tests.helpers.alerts import make_alert

HOSTILE = "Missile\r\nBcc: x@y <script>alert(1)</script>"
STORY = AlertStory(7, datetime(2024, 5, 7, 9, 0, tzinfo=UTC), ("ap", "wire", "reuters"))
SCHEMA = json.loads(files("alerts").joinpath("schema/alert.created.v1.json").read_text())


def render(alert: Any = None, **kwargs: Any) -> EmailMessage:
    kwargs.setdefault("sender", "Watchfloor <alerts@example.org>")
    kwargs.setdefault("to", ["desk@example.org"])
    return render_email(alert or make_alert(), **kwargs)


def reparse(msg: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_subject_format() -> None:
    assert email_subject(make_alert()) == (
        "[HIGH] Missile tests: Pyongyang fires ballistic missile into the sea"
    )
    assert email_subject(make_alert(), prefix="[OSINT]").startswith("[OSINT] [HIGH] Missile")


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\t"])
def test_subject_strips_line_breaks(sep: str) -> None:
    subject = email_subject(make_alert(title=f"Missile{sep}Bcc: x@y"))
    assert subject == "[HIGH] Missile tests: Missile Bcc: x@y"


def test_subject_strips_bidi_overrides_and_caps_length() -> None:
    subject = email_subject(make_alert(title="\u202egpj.exe " + "x" * 500))
    assert "\u202e" not in subject
    assert len(subject) == 200
    assert subject.endswith("…")


@given(st.text(max_size=400))
def test_any_title_yields_one_header_line(title: str) -> None:
    subject = email_subject(make_alert(title=title))
    assert len(subject) <= 200
    bad = [c for c in subject if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")]
    assert bad == []
    msg = reparse(render(make_alert(title=title)))
    # The email package may drop a space between two RFC 2047 encoded words when it
    # parses the header back (a stdlib quirk), so compare the text without spaces.
    assert "".join(msg["Subject"].split()) == "".join(subject.split())
    assert sorted(msg.keys()) == sorted(render().keys())


def test_email_headers_and_parts() -> None:
    msg = reparse(render(to=["a@example.org", "b@example.org"]))
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == "<dlv_0f3c2a@watchfloor>"
    assert msg["X-Watchfloor-Alert-Id"] == "alr_1"
    assert msg["From"] == "Watchfloor <alerts@example.org>"
    assert [a.addr_spec for a in msg["To"].addresses] == ["a@example.org", "b@example.org"]
    assert parsedate_to_datetime(msg["Date"]) == datetime(2024, 5, 7, 9, 30, tzinfo=UTC)
    text, html = parts(msg)
    assert "*ballistic missile*" in text and "*North Korea*" in text
    assert "<mark>ballistic missile</mark>" in html and "<mark>North Korea</mark>" in html
    assert "https://news.example.org/2024/05/07/missile" in text
    assert 'href="https://news.example.org/2024/05/07/missile"' in html


def test_hostile_title_is_escaped_and_injects_no_header() -> None:
    msg = reparse(render(make_alert(title=HOSTILE)))
    assert msg["Bcc"] is None
    text, html = parts(msg)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<script>alert(1)</script>" in text  # plain text shows it as written


def test_non_http_link_is_not_linked() -> None:
    alert = make_alert(item=replace(make_alert().item, url="javascript:alert(1)"))
    text, html = parts(render(alert))
    assert "javascript:" not in html and "javascript:" not in text
    assert "href" not in html.split("<h2", 1)[1].split("</h2>", 1)[0]


def test_also_reported_by_only_when_present() -> None:
    text, html = parts(render(make_alert(also_reported_by=("Reuters", "AP <b>"))))
    assert "Also reported by: Reuters, AP <b>" in text
    assert "Reuters, AP &lt;b&gt;" in html
    text, html = parts(render())
    assert "Also reported by" not in text and "Also reported by" not in html


def test_story_sources_become_also_reported_by() -> None:
    alert = make_alert(story=STORY)
    text, html = parts(render(alert))
    assert "Also reported by: ap, reuters" in text and "ap, reuters" in html
    assert webhook_payload(alert)["data"]["story"] == {
        "also_reported_by": ["ap", "reuters"],
        "id": 7,
        "first_seen": "2024-05-07T09:00:00Z",
        "sources": ["ap", "wire", "reuters"],
        "languages": [],
    }
    solo = make_alert(story=replace(STORY, sources=("wire",)))
    assert webhook_payload(solo)["data"]["story"]["also_reported_by"] == []
    assert "Also reported by" not in parts(render(solo))[0]


def test_a_story_in_several_languages_lists_them_in_every_alert() -> None:
    from alerts.render_chat import chat_body

    alert = make_alert(story=replace(STORY, languages=("ko", "ru", "en")))
    text, html = parts(render(alert))
    assert "Reported in: ko, ru, en" in text
    assert "Reported in</td><td>ko, ru, en" in html
    assert webhook_payload(alert)["data"]["story"]["languages"] == ["ko", "ru", "en"]
    assert "Reported in: ko, ru, en" in chat_body(alert, "text")
    one = make_alert(story=replace(STORY, languages=("en",)))  # the Feed line says it already
    assert "Reported in" not in parts(render(one))[0]
    assert webhook_payload(one)["data"]["story"]["languages"] == []
    hostile = make_alert(story=replace(STORY, languages=("ko", "<script>\r\nBcc: x")))
    text, html = parts(render(hostile))
    assert "<script>" not in html and "\nBcc" not in text


def test_templates_dir_overrides_one_file_with_autoescape(tmp_path: Path) -> None:
    (tmp_path / "email.html").write_text("<p>custom {{ title }}</p>")
    text, html = parts(render(make_alert(title="A <b> & B"), templates_dir=str(tmp_path)))
    assert html.strip() == "<p>custom A &lt;b&gt; &amp; B</p>"
    assert "Watch-list: Missile tests (HIGH)" in text  # the packaged text template


def test_highlight_is_case_and_whitespace_insensitive() -> None:
    hit = Hit("ballistic missile", "title", 0, 17, "")
    alert = make_alert(hits=(hit,), snippet="A BALLISTIC  missile, then a ballistic missile.")
    assert highlight(alert) == [
        ("A ", False),
        ("BALLISTIC missile", True),
        (", then a ", False),
        ("ballistic missile", True),
        (".", False),
    ]
    assert highlight(make_alert(hits=(), snippet="plain")) == [("plain", False)]


def _documented(payload: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys present in the payload that the schema does not describe."""
    if isinstance(payload, list):
        return [k for v in payload for k in _documented(v, schema.get("items", {}), path + "[]")]
    if not isinstance(payload, dict):
        return []
    props = schema.get("properties", {})
    missing = [f"{path}.{k}" for k in payload if k not in props]
    return missing + [
        k for key, v in payload.items() for k in _documented(v, props.get(key, {}), f"{path}.{key}")
    ]


@pytest.mark.parametrize(
    "alert",
    [
        make_alert(),
        make_alert(also_reported_by=("Reuters",)),
        make_alert(item=replace(make_alert().item, published_at=None)),
        make_alert(story=STORY),
        make_alert(story=STORY, update="now reported by an official source (kcna)"),
    ],
)
def test_webhook_payload_matches_schema(alert: Any) -> None:
    payload = json.loads(json.dumps(webhook_payload(alert)))
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(payload)
    assert _documented(payload, SCHEMA) == []
    assert payload["type"] == "alert.created.v1"
    datetime.fromisoformat(payload["timestamp"])
    assert ("story" in payload["data"]) == bool(alert.also_reported_by or alert.story)
    assert payload["data"].get("update") == alert.update


def test_an_update_alert_says_so_everywhere_and_escapes_it() -> None:
    alert = make_alert(update="now reported by an official source (<b>kcna</b>)")
    assert email_subject(alert).startswith("[HIGH] Update: Missile tests: ")
    text, html = parts(render(alert))
    assert "UPDATE:     now reported by an official source (<b>kcna</b>)" in text
    assert "(&lt;b&gt;kcna&lt;/b&gt;)" in html and "<b>kcna" not in html
    assert "Update: " in slack_payload(alert)["blocks"][0]["text"]["text"]
    assert "update=" in log_line(alert)
    first = make_alert()
    assert "Update" not in email_subject(first) and "UPDATE" not in parts(render(first))[0]


def test_schema_rejects_a_wrong_payload() -> None:
    payload = webhook_payload(make_alert())
    payload["data"]["watchlist"]["severity"] = "apocalyptic"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, SCHEMA)


def test_webhook_payload_content() -> None:
    data = webhook_payload(make_alert(title=HOSTILE))["data"]
    assert (
        data["item"]["title"] == "Missile Bcc: x@y <script>alert(1)</script>"
    )  # one line, not escaped
    assert data["watchlist"] == {
        "id": "missile-tests",
        "title": "Missile tests",
        "severity": "high",
    }
    assert data["item"]["published_at"] == "2024-05-07T09:12:00Z"
    assert data["matches"] == [
        {"term": "North Korea", "field": "summary", "snippet": data["matches"][0]["snippet"]}
    ]


def _slack_texts(payload: dict[str, Any]) -> list[str]:
    texts = [payload["text"]]
    for block in payload["blocks"]:
        texts += (
            [block["text"]["text"]] if "text" in block else [e["text"] for e in block["elements"]]
        )
    return texts


def test_slack_payload_escapes_feed_text() -> None:
    alert = make_alert(title="<!channel> A & B <script>", also_reported_by=("<@U123>",))
    texts = _slack_texts(slack_payload(alert))
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<@U123>" not in joined and "<script>" not in joined
    assert "&lt;!channel&gt; A &amp; B &lt;script&gt;" in joined
    assert "<https://news.example.org/2024/05/07/missile|" in texts[1]
    assert texts[0].startswith("[HIGH] Missile tests:")


def test_slack_payload_highlights_hits() -> None:
    texts = _slack_texts(slack_payload(make_alert()))
    assert any("*ballistic missile*" in t and t.startswith("> ") for t in texts)


def test_log_line_is_one_line() -> None:
    line = log_line(make_alert(title=HOSTILE + "\u2028x"))
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert line.startswith("alert.created alert_id=alr_1 delivery_id=dlv_0f3c2a ")
    assert 'title="Missile Bcc: x@y <script>alert(1)</script> x"' in line
    assert 'terms="ballistic missile,North Korea"' not in line  # no hit on the hostile title
    assert 'terms="North Korea"' in line
