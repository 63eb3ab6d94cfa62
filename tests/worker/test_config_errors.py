"""``watchfloor check`` in an admin's words, every problem in one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import ConfigError, load_config

FEEDS = """\
feeds:
  - id: wire
    url: http://127.0.0.1/a
  - id: wire
    url: http://127.0.0.1/b
  - id: Bad Id
    url: ftp://x
    intervl: 5m
  - url: http://127.0.0.1/c
    interval: banana
    enabled: maybe
"""
WATCHLISTS = """\
watchlists:
  - id: a
    title: A
    query: 'missile'
    chanels: [console]
    severity: urgent
  - id: b
    title: B
    query: '(missile'
    channels: [console, consle]
    sources: [wire, wier, tag:official]
  - id: a
    title: dup
    query: rocket
  - id: c
    query: 'x AND'
"""
CHANNELS = """\
ops_chanel: console
channels:
  - id: console
    type: log
  - id: hook
    type: webhook
    url: "${WF_TEST_UNSET_URL}"
    secret: "${WF_TEST_UNSET_SECRET}"
  - id: mail
    type: emial
  - id: mail2
    type: email
    to: desk@example.org
    smtp: {host: x, prot: 25}
"""


@pytest.fixture
def problems(tmp_path: Path) -> list[str]:
    for name, text in (("feeds", FEEDS), ("watchlists", WATCHLISTS), ("channels", CHANNELS)):
        (tmp_path / f"{name}.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    return [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues]


def test_every_problem_is_reported_in_one_run_in_file_order(problems: list[str]) -> None:
    assert problems == [
        "feeds.yaml:4: feeds[1].id: duplicate id 'wire'",
        "feeds.yaml:6: feeds[2].id: 'Bad Id' is not a valid id: use lowercase letters, digits, "
        "'.', '_' or '-', starting with a letter or digit",
        "feeds.yaml:7: feeds[2].url: 'ftp://x' is not an http:// or https:// URL",
        "feeds.yaml:8: feeds[2].intervl: unknown key 'intervl' (did you mean 'interval'?); "
        "known keys: enabled, follow, follow_delay, follow_max, headers, id, interval, "
        "max_interval, min_interval, render, robots, select, tags, title, type, url",
        "feeds.yaml:9: feeds[3].id: missing required key 'id'",
        "feeds.yaml:10: feeds[3].interval: not a duration: 'banana' (use e.g. 30s, 5m, 1h, 7d)",
        "feeds.yaml:11: feeds[3].enabled: must be true or false, not 'maybe'",
        "watchlists.yaml:5: watchlists[0].chanels: unknown key 'chanels' (did you mean "
        "'channels'?); known keys: channels, digest, enabled, exclude, id, languages, mode, "
        "notify_updates, query, russian_forms, severity, sources, title, update_at_languages, "
        "update_at_sources",
        "watchlists.yaml:6: watchlists[0].severity: 'urgent' is not one of low, medium, high, "
        "critical",
        "watchlists.yaml:9: watchlists[1].query: unbalanced parenthesis: '(' is never closed "
        "(column 1)",
        "watchlists.yaml:10: watchlists[1].channels[1]: unknown channel id 'consle' (did you "
        "mean 'console'?) (channels.yaml has: console, hook, mail, mail2)",
        "watchlists.yaml:11: watchlists[1].sources[1]: unknown feed id 'wier' (did you mean "
        "'wire'?) (write tag:NAME for a tag)",
        "watchlists.yaml:12: watchlists[2].id: duplicate id 'a'",
        # an entry that fails validation still has its query checked
        "watchlists.yaml:15: watchlists[3].title: missing required key 'title'",
        "watchlists.yaml:16: watchlists[3].query: dangling operator AND (column 3)",
        "channels.yaml:1: ops_chanel: unknown key 'ops_chanel' (did you mean 'ops_channel'?); "
        "known keys: channels, ops_channel",
        # one error per missing variable, not a second one about the empty value
        "channels.yaml:7: channels[1].url: environment variable WF_TEST_UNSET_URL is not set "
        "(write ${WF_TEST_UNSET_URL:-default} for one)",
        "channels.yaml:8: channels[1].secret: environment variable WF_TEST_UNSET_SECRET is not "
        "set (write ${WF_TEST_UNSET_SECRET:-default} for one)",
        "channels.yaml:10: channels[2].type: unknown type 'emial' (did you mean 'email'?); "
        "known types: email, webhook, log, apprise",
        "channels.yaml:11: channels[3].from: missing required key 'from'",
        "channels.yaml:13: channels[3].to: must be a list (e.g. [a, b]), not 'desk@example.org'",
        "channels.yaml:14: channels[3].smtp.prot: unknown key 'prot' (did you mean 'port'?); "
        "known keys: ca_file, host, password, port, security, timeout, tls_verify, username",
    ]


def test_no_pydantic_wording_reaches_the_admin(problems: list[str]) -> None:
    text = "\n".join(problems)
    for pydantic_words in ("Extra inputs", "Field required", "Input should", "Value error"):
        assert pydantic_words not in text


MARKERS = """\
aliases:
  dprk: [КНДР, "Северная Корея~"]
  en: [DPRK]
watchlists:
  - id: ok
    title: Marked terms compile
    query: '"баллистическая ракета"~ OR ракета~ OR КНДР~'
  - id: latin
    title: A Latin term
    query: 'missile~ AND ракета~'
  - id: wildcard
    title: Both
    query: 'ракет*~'
    exclude: '"ракета~"'
  - id: aliases
    title: Aliases
    query: '@en~ OR ракета'
  - id: member
    title: A marked alias member
    query: '@dprk AND ракета~'
"""


def test_a_misplaced_russian_forms_marker_names_file_line_and_what_is_wrong(
    tmp_path: Path,
) -> None:
    (tmp_path / "watchlists.yaml").write_text(MARKERS)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    (tmp_path / "channels.yaml").write_text("channels: []\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues] == [
        "watchlists.yaml:10: watchlists[1].query: ~ asks for Russian forms, but 'missile' has "
        "no Cyrillic letters (only Russian terms are inflected) (column 8)",
        "watchlists.yaml:13: watchlists[2].query: a term takes * or ~, not both: the wildcard "
        "already matches every ending (column 7)",
        "watchlists.yaml:14: watchlists[2].exclude: put ~ after the closing quote to mark a "
        'phrase ("баллистическая ракета"~) (column 8)',
        "watchlists.yaml:17: watchlists[3].query: ~ asks for Russian forms, but alias @en has "
        "no Cyrillic member without * (only Russian terms are inflected) (column 4)",
        "watchlists.yaml:20: watchlists[4].query: alias @dprk: ~ goes in the query, not on an "
        "alias member: write @name~ there for the forms of the alias's Russian members "
        "(column 1)",
    ]
