"""Real feeds from ../shared/corpus/real in many encodings decode to the right script."""

from __future__ import annotations

from pathlib import Path

import pytest

from feeds.parse import parse_feed

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "real"

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no corpus at {REAL}")

CASES = [
    # (file, a word the titles must contain, how many items at least)
    ("aviaport-ru-cp1251.xml", "авиакатастрофе", 30),
    ("orenburg-news-cp1251.xml", "Бузулуке", 10),
    ("ibash-org-ru-cp1251.xml", "Цитата", 50),
    ("newsru-com-koi8r.xml", "Турции", 30),
    ("intertat-ru-koi8r.xml", "Чистополе", 30),
    ("yunho-egloos-euckr.xml", "웹의 이중성", 10),
    ("naver-blog-euckr.xml", "기본강의시리즈", 10),
    ("acnnewswire-korean-euckr.xml", "계약을 체결", 8),
    ("ricanet-cp949.xml", "구라치다", 10),  # declares euc-kr, contains CP949-only Hangul
    ("10e-org-sjis.rdf", "ちょっと待って", 30),
    ("tdiary-ishinao-eucjp.rdf", "ツッコミ", 15),
    ("suspilne-ukrnet-2023.xml", "Торгівля", 20),
    ("bbc-urdu-2018.xml", "امریکی", 26),
    ("geekpark-2020.xml", "充电桩", 30),
    ("slashdot-2024.rdf", "Ransomware", 15),
    ("daringfireball-2017.json", "The Talk Show", 48),
]


@pytest.mark.parametrize(("name", "word", "count"), CASES, ids=[c[0] for c in CASES])
def test_real_feed_titles_decode(name: str, word: str, count: int) -> None:
    feed = parse_feed((REAL / name).read_bytes(), url="https://feeds.example.org/feed")
    titles = " | ".join(item.title for item in feed.items)
    assert len(feed.items) >= count
    assert word in titles
    assert "\ufffd" not in titles
    assert all(item.guid and item.fingerprint for item in feed.items)
