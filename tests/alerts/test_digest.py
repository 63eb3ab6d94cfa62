"""Digests: several alerts as one message, rendered (``alerts.render_digest``) and sent by every
channel type through ``send_digest`` against real SMTP and HTTP servers on loopback."""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Callable, Iterator
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
from referencing import Registry, Resource
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from structlog.testing import capture_logs

from alerts.channels import CHANNEL_TYPES
from alerts.channels.email import EmailChannel, EmailConfig
from alerts.channels.log import LogChannel, LogConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.render import webhook_payload
from alerts.render_digest import (
    SLACK_BLOCKS_MAX,
    SLACK_TEXT_MAX,
    by_watchlist,
    digest_log_fields,
    digest_payload,
    digest_subject,
    render_digest_email,
    slack_digest_payload,
)
from alerts.types import AlertWatchlist, Digest
from common.errors import ChannelGoneError, DeliveryError
from tests.helpers.alerts import CYBER, digest_alerts, make_alert, make_digest
from tests.helpers.http import Reply, WebhookReceiver
from tests.helpers.smtp import SMTPServer

pytestmark = pytest.mark.timeout(30)
HOSTILE = "Missile\r\nBcc: x@y <script>alert(1)</script>"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()
SCHEMAS = {
    name: json.loads(files("alerts").joinpath(f"schema/{name}.json").read_text())
    for name in ("alert.created.v1", "alert.digest.v1")
}
REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)
DIGEST_SCHEMA = SCHEMAS["alert.digest.v1"]
TO = ["desk@example.org", "Duty Officer <duty@example.org>"]
ORDER = ["Ballistic missile maker hit by ransomware"]  # cyber (critical) first
ORDER += ["Pyongyang fires ballistic missile into the sea", "Second ballistic missile launch"]
ORDER += ["Sanctions widened over ballistic missile tests"]  # low last


def render(digest: Digest | None = None, **kwargs: Any) -> EmailMessage:
    kwargs.setdefault("sender", "Watchfloor <alerts@example.org>")
    kwargs.setdefault("to", TO)
    return render_digest_email(digest or make_digest(), **kwargs)


def reparse(msg: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def positions(haystack: str, needles: list[str]) -> list[int]:
    return [haystack.index(n) for n in needles]


# --- subject ---------------------------------------------------------------------------


def test_subject_of_a_scheduled_digest() -> None:
    assert digest_subject(make_digest()) == (
        "[Watchfloor digest] [CRITICAL] 4 alerts, 3 watch-lists, 07:30–08:30 UTC: "
        "Cyber attacks, Missile tests, Sanctions"
    )
    one = make_digest(make_alert())
    assert digest_subject(one, prefix="[OSINT]") == (
        "[OSINT] [Watchfloor digest] [HIGH] 1 alert, 1 watch-list, 07:30–08:30 UTC: Missile tests"
    )


def test_subject_of_a_rate_limit_overflow() -> None:
    assert digest_subject(make_digest(reason="rate-limit")) == (
        "[Watchfloor] [CRITICAL] 4 more alerts (rate limit reached): "
        "Cyber attacks, Missile tests, Sanctions"
    )
    one = make_digest(make_alert(), reason="rate-limit")
    assert digest_subject(one).startswith("[Watchfloor] [HIGH] 1 more alert (rate limit")


def test_subject_window_across_days_and_naive_times_as_utc() -> None:
    daily = make_digest(
        window_start=datetime(2024, 5, 6, 5, 30),  # naive, as SQLite hands them back
        window_end=datetime(2024, 5, 7, 5, 30),
    )
    assert "2024-05-06 05:30 – 2024-05-07 05:30 UTC" in digest_subject(daily)


def test_subject_strips_controls_and_caps_length() -> None:
    hostile = AlertWatchlist("x", "\u202eevil\r\nBcc: x@y " + "w" * 300, "high")
    subject = digest_subject(make_digest(make_alert(watchlist=hostile)))
    assert "\u202e" not in subject and "\r" not in subject and "\n" not in subject
    assert subject.endswith(": evil Bcc: x@y " + "w" * 85 + "…")  # one title: 100 at most
    many = [AlertWatchlist(f"w{i}", f"Watch-list {i} " + "v" * 80, "low") for i in range(5)]
    subject = digest_subject(make_digest(*(make_alert(watchlist=w) for w in many)))
    assert len(subject) == 200 and subject.endswith("…")


@given(st.text(max_size=300), st.text(max_size=30))
def test_any_watchlist_title_or_severity_yields_one_header_line(title: str, sev: str) -> None:
    digest = make_digest(make_alert(title=title, watchlist=AlertWatchlist("w", title, sev)))
    subject = digest_subject(digest)
    assert len(subject) <= 200
    bad = [c for c in subject if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")]
    assert bad == []
    msg = reparse(render(digest))
    assert "".join(msg["Subject"].split()) == "".join(subject.split())  # see test_render
    assert sorted(msg.keys()) == sorted(render().keys())


# --- email -----------------------------------------------------------------------------


def test_email_headers_are_the_digests() -> None:
    msg = reparse(render())
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == "<dig_7b1e@watchfloor>"
    assert msg["X-Watchfloor-Digest-Id"] == "dig_7b1e"
    assert msg["X-Watchfloor-Alert-Id"] is None
    assert msg["Auto-Submitted"] == "auto-generated"
    assert parsedate_to_datetime(msg["Date"]) == datetime(2024, 5, 7, 8, 30, tzinfo=UTC)
    assert [a.addr_spec for a in msg["To"].addresses] == ["desk@example.org", "duty@example.org"]


def test_email_groups_by_watchlist_most_severe_first_each_alert_once() -> None:
    text, html = parts(render())
    headings = ["== Cyber attacks (CRITICAL): 1 alert ==", "== Missile tests (HIGH): 2 alerts =="]
    headings.append("== Sanctions (LOW): 1 alert ==")
    assert positions(text, headings) == sorted(positions(text, headings))
    assert positions(text, ORDER) == sorted(positions(text, ORDER))
    assert positions(html, ORDER) == sorted(positions(html, ORDER))
    assert positions(text, headings)[1] < text.index(ORDER[1]) < positions(text, headings)[2]
    for title in ORDER:
        assert text.count(f"* {title}\n") == 1
        assert html.count(f">{title}</a></h3>") == 1
    assert "4 alerts in 3 watch-lists, 2024-05-07 07:30–08:30 UTC." in text


def test_email_alert_details_reuse_the_single_alert_helpers() -> None:
    text, html = parts(render())
    assert "*ballistic missile*" in text and "*North Korea*" in text
    assert "<mark>ballistic missile</mark>" in html and "<mark>North Korea</mark>" in html
    assert html.count('<a href="https://news.example.org/2024/05/07/missile">') == 4
    assert "Feed:      wire" in text and "Published: 2024-05-07 09:12 UTC" in text
    assert text.count("Also reported by: ap, reuters") == 1
    assert html.count("Also reported by ap, reuters") == 1


def test_rate_limit_email_says_nothing_was_dropped() -> None:
    text, html = parts(render(make_digest(reason="rate-limit")))
    for body in (text, html):
        assert "rate limit" in body and "Nothing was dropped." in body
    assert "reached its rate limit" not in parts(render())[0]


def test_hostile_input_is_escaped_and_injects_no_header() -> None:
    evil = make_alert(title=HOSTILE)
    evil = replace(evil, item=replace(evil.item, url="javascript:alert(1)"))
    msg = reparse(render(make_digest(evil, *digest_alerts(), digest_id="dig\r\nBcc: z@evil")))
    assert msg["Bcc"] is None
    assert msg["Message-ID"] == "<dig--Bcc--z-evil@watchfloor>"
    assert msg["X-Watchfloor-Digest-Id"] == "dig Bcc: z@evil"
    text, html = parts(msg)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "Missile Bcc: x@y <script>alert(1)</script>" in text  # plain text shows it as written
    assert "javascript:" not in html and "javascript:" not in text


def test_templates_dir_overrides_digest_html_with_autoescape(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text(
        "{% for g in groups %}{% for a in g.alerts %}<p>{{ a.title }}</p>{% endfor %}{% endfor %}"
    )
    digest = make_digest(make_alert(title="A <b> & B"))
    text, html = parts(render(digest, templates_dir=str(tmp_path)))
    assert html.strip() == "<p>A &lt;b&gt; &amp; B</p>"
    assert "== Missile tests (HIGH): 1 alert ==" in text  # the packaged text template


# --- webhook payload and schema --------------------------------------------------------


def validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(DIGEST_SCHEMA)
    return jsonschema.Draft202012Validator(DIGEST_SCHEMA, registry=REGISTRY)


def undocumented(payload: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys in the payload that the schema (following ``$ref``) does not describe."""
    if "$ref" in schema:
        schema = REGISTRY.resolver().lookup(schema["$ref"]).contents
    if isinstance(payload, list):
        return [k for v in payload for k in undocumented(v, schema.get("items", {}), path + "[]")]
    if not isinstance(payload, dict):
        return []
    props = schema.get("properties", {})
    missing = [f"{path}.{k}" for k in payload if k not in props]
    nested = (undocumented(v, props.get(k, {}), f"{path}.{k}") for k, v in payload.items())
    return missing + [k for keys in nested for k in keys]


@pytest.mark.parametrize("reason", ["digest", "rate-limit"])
def test_digest_payload_matches_schema(reason: str) -> None:
    digest = make_digest(reason=reason)
    payload = json.loads(json.dumps(digest_payload(digest)))
    validator().validate(payload)
    assert undocumented(payload, DIGEST_SCHEMA) == []
    assert payload["type"] == "alert.digest.v1"
    assert payload["timestamp"] == "2024-05-07T08:30:00Z"
    data = payload["data"]
    assert (data["digest_id"], data["reason"]) == ("dig_7b1e", reason)
    assert data["window"] == {"start": "2024-05-07T07:30:00Z", "end": "2024-05-07T08:30:00Z"}
    assert data["alerts"] == [
        json.loads(json.dumps(webhook_payload(a)["data"])) for a in digest.alerts
    ]


def test_undocumented_walks_into_the_referenced_alert_schema() -> None:
    payload = json.loads(json.dumps(digest_payload(make_digest())))
    payload["data"]["alerts"][2]["story"]["mood"] = "grim"
    assert undocumented(payload, DIGEST_SCHEMA) == [".data.alerts[].story.mood"]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["alerts"][2]["watchlist"].update(severity="apocalyptic"),  # via the $ref
        lambda d: d["alerts"][0].pop("snippet"),  # via the $ref
        lambda d: d.update(reason="because"),
        lambda d: d.update(alerts=[]),
        lambda d: d["window"].pop("end"),
    ],
)
def test_schema_rejects_a_wrong_payload(breakage: Any) -> None:
    payload = json.loads(json.dumps(digest_payload(make_digest())))
    validator().validate(payload)
    breakage(payload["data"])
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(payload)


def test_groups_keep_digest_order_for_equal_severity() -> None:
    a = make_alert(alert_id="a", watchlist=AlertWatchlist("b-list", "B", "high"))
    b = make_alert(alert_id="b", watchlist=AlertWatchlist("a-list", "A", "high"))
    c = make_alert(alert_id="c", watchlist=AlertWatchlist("odd", "Odd", "unheard-of"))
    grouped = by_watchlist(make_digest(c, a, b, a))
    assert [(w.id, [x.alert_id for x in alerts]) for w, alerts in grouped] == [
        ("b-list", ["a", "a"]),
        ("a-list", ["b"]),
        ("odd", ["c"]),
    ]


# --- slack -----------------------------------------------------------------------------


def slack_texts(payload: dict[str, Any]) -> list[str]:
    texts = []
    for block in payload["blocks"]:
        texts += (
            [block["text"]["text"]] if "text" in block else [e["text"] for e in block["elements"]]
        )
    return texts


def test_slack_digest_escapes_feed_text_and_orders_groups() -> None:
    evil = make_alert(title="<!channel> A & B <script>", watchlist=CYBER)
    payload = slack_digest_payload(make_digest(evil, *digest_alerts()))
    joined = "\n".join([payload["text"], *slack_texts(payload)])
    assert "<!channel>" not in joined and "<script>" not in joined
    assert "|&lt;!channel&gt; A &amp; B &lt;script&gt;>" in joined
    assert payload["text"].startswith("[Watchfloor digest] [CRITICAL] 5 alerts, 3 watch-lists")
    headings = ["*[CRITICAL] Cyber attacks* (2)", "*[HIGH] Missile tests* (2)", "*[LOW] Sanctions*"]
    assert positions(joined, headings) == sorted(positions(joined, headings))
    assert sum(t.count("\n• ") for t in slack_texts(payload)) == 5


def test_slack_digest_stays_within_slack_limits_and_counts_the_rest() -> None:
    long_title = "ballistic missile " + "x" * 280
    alerts = [make_alert(alert_id=f"a{i}", title=f"{i} {long_title}") for i in range(700)]
    payload = slack_digest_payload(make_digest(*alerts))
    texts = slack_texts(payload)
    assert len(payload["blocks"]) == SLACK_BLOCKS_MAX
    assert all(len(t) <= SLACK_TEXT_MAX for t in texts)
    shown = sum(t.count("• ") for t in texts)
    note = payload["blocks"][-1]["elements"][0]["text"]
    assert 0 < shown < 700
    assert note.startswith(f"{700 - shown} more alerts not shown")


# --- channels --------------------------------------------------------------------------


def test_every_channel_type_can_send_a_digest() -> None:
    for cls in CHANNEL_TYPES.values():
        assert callable(getattr(cls, "send_digest", None)), cls


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def email_channel(smtp: SMTPServer) -> Iterator[Callable[..., EmailChannel]]:
    """Email channels to ``smtp``; their kept sessions are closed after the test."""
    made: list[EmailChannel] = []

    def make(**extra: Any) -> EmailChannel:
        smtp_block = {"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": "5s"}
        entry = {"id": "desk", "type": "email", "to": TO, "from": "Watchfloor <alerts@example.org>"}
        made.append(
            EmailChannel(EmailConfig.model_validate({**entry, "smtp": smtp_block, **extra}))
        )
        return made[-1]

    yield make
    for channel in made:
        channel.close()


def test_email_digest_is_one_message_with_envelope_from_config(
    smtp: SMTPServer, email_channel: Callable[..., EmailChannel]
) -> None:
    channel = email_channel(subject_prefix="[OSINT]")
    channel.send_digest(make_digest())
    channel.send_digest(make_digest())  # a retry: the same Message-ID
    assert len(smtp.messages) == 2
    for received in smtp.messages:
        assert received.mail_from == "alerts@example.org"
        assert received.rcpt_tos == ("desk@example.org", "duty@example.org")
        msg = received.parsed()
        assert msg["Message-ID"] == "<dig_7b1e@watchfloor>"
        assert msg["Subject"].startswith("[OSINT] [Watchfloor digest] [CRITICAL] 4 alerts")
        assert positions(parts(msg)[0], ORDER) == sorted(positions(parts(msg)[0], ORDER))


def test_email_digest_hostile_title_adds_no_recipient(
    smtp: SMTPServer, email_channel: Callable[..., EmailChannel]
) -> None:
    email_channel().send_digest(make_digest(make_alert(title=HOSTILE), *digest_alerts()))
    [received] = smtp.messages
    assert received.rcpt_tos == ("desk@example.org", "duty@example.org")
    msg = received.parsed()
    assert msg["Bcc"] is None
    assert "<script>" not in parts(msg)[1] and "&lt;script&gt;" in parts(msg)[1]


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("451 4.3.0 Try again later", False), ("554 5.7.1 Rejected", True)],
)
def test_email_digest_errors_are_classified_like_send(
    smtp: SMTPServer, email_channel: Callable[..., EmailChannel], reply: str, permanent: bool
) -> None:
    smtp.fail("DATA", reply)
    with pytest.raises(DeliveryError) as info:
        email_channel().send_digest(make_digest())
    assert info.value.permanent is permanent and reply.split()[0] in info.value.message
    assert smtp.messages == []


def test_email_digest_broken_template_is_permanent(
    smtp: SMTPServer, tmp_path: Path, email_channel: Callable[..., EmailChannel]
) -> None:
    (tmp_path / "digest.txt").write_text("{{ no_such_variable }}")
    with pytest.raises(DeliveryError) as info:
        email_channel(templates_dir=str(tmp_path)).send_digest(make_digest())
    assert info.value.permanent and "template" in info.value.message
    assert smtp.messages == []


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def webhook(url: str, **extra: Any) -> WebhookChannel:
    entry: dict[str, Any] = {"id": "hook", "type": "webhook", "url": url, "secret": SECRET}
    return WebhookChannel(WebhookConfig.model_validate({**entry, **extra}), allow_private=True)


def test_webhook_digest_is_signed_and_matches_the_schema(hook: WebhookReceiver) -> None:
    hook.fail_times(1, status=503)
    channel = webhook(hook.url, secret=[SECRET, OLD_SECRET])
    with pytest.raises(DeliveryError) as info:
        channel.send_digest(make_digest())
    assert not info.value.permanent
    channel.send_digest(make_digest())
    assert [r.headers["webhook-id"] for r in hook.requests] == ["dig_7b1e", "dig_7b1e"]
    request = hook.requests[-1]
    for secret in (SECRET, OLD_SECRET):
        payload = Webhook(secret).verify(request.body, request.headers)
    validator().validate(payload)
    assert [a["alert_id"] for a in payload["data"]["alerts"]] == [
        "alr_1",
        "alr_2",
        "alr_3",
        "alr_4",
    ]
    tampered = request.body.replace(b"dig_7b1e", b"dig_7b1f")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)


@pytest.mark.parametrize(
    ("reply", "error_type", "permanent", "hint"),
    [
        (Reply(429, headers={"Retry-After": "30"}), DeliveryError, False, 30.0),
        (Reply(400), DeliveryError, True, None),
        (Reply(410), ChannelGoneError, True, None),
    ],
)
def test_webhook_digest_errors_are_classified_like_send(
    hook: WebhookReceiver, reply: Reply, error_type: type, permanent: bool, hint: float | None
) -> None:
    hook.script(reply)
    with pytest.raises(DeliveryError) as info:
        webhook(hook.url).send_digest(make_digest())
    assert type(info.value) is error_type
    assert info.value.permanent is permanent and info.value.retry_after == hint


def test_webhook_digest_goes_through_the_ssrf_guard(hook: WebhookReceiver) -> None:
    config = WebhookConfig.model_validate(
        {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET}
    )
    with pytest.raises(DeliveryError) as info:
        WebhookChannel(config, allow_private=False).send_digest(make_digest())
    assert info.value.permanent and "127.0.0.1" in info.value.message
    assert hook.requests == []


def test_slack_webhook_digest(hook: WebhookReceiver) -> None:
    webhook(hook.url, format="slack", secret=[]).send_digest(make_digest())
    [request] = hook.requests
    body = json.loads(request.body)
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("[Watchfloor digest] [CRITICAL] 4 alerts")
    assert request.headers["webhook-id"] == "dig_7b1e"
    assert "webhook-signature" not in request.headers


def test_log_digest_is_one_event_then_one_line_per_alert() -> None:
    digest = make_digest(make_alert(title=HOSTILE, alert_id="alr_0"), *digest_alerts())
    with capture_logs() as logs:
        LogChannel(LogConfig(id="console")).send_digest(digest)
    head, *lines = logs
    assert head == {
        "event": "alert.digest",
        "log_level": "info",
        "channel": "console",
        **digest_log_fields(digest),
    }
    assert head["count"] == 5 and head["watchlists"] == "cyber,missile-tests,sanctions"
    assert [e["event"] for e in lines] == ["alert.created"] * 5
    assert [e["alert_id"] for e in lines] == ["alr_0", "alr_1", "alr_2", "alr_3", "alr_4"]
    assert {e["digest_id"] for e in lines} == {"dig_7b1e"}
    assert lines[0]["title"] == "Missile Bcc: x@y <script>alert(1)</script>"
