"""The exception tree: one base, each error keeps what the worker reads from it."""

from __future__ import annotations

import re

import pytest

import common.errors
from common.errors import (
    BlockedURLError,
    ChannelGoneError,
    DeliveryError,
    FetchError,
    IngestError,
    ParseError,
    SelectorError,
    WatchfloorError,
)

ALL = (
    IngestError,
    FetchError,
    BlockedURLError,
    ParseError,
    SelectorError,
    DeliveryError,
    ChannelGoneError,
)


@pytest.mark.parametrize("cls", [IngestError, FetchError, ParseError, DeliveryError])
def test_every_error_is_a_watchfloor_error_and_keeps_its_hints(cls: type[WatchfloorError]) -> None:
    error = cls("server busy", permanent=True, retry_after=30.0)
    assert isinstance(error, WatchfloorError)
    assert (error.message, error.permanent, error.retry_after) == ("server busy", True, 30.0)
    assert str(error) == "server busy"
    plain = cls("oops")
    assert (plain.permanent, plain.retry_after) == (False, None)


@pytest.mark.parametrize("cls", [BlockedURLError, ChannelGoneError])
def test_refused_and_gone_are_always_permanent(cls: type[WatchfloorError]) -> None:
    error = cls("no")
    assert isinstance(error, WatchfloorError)
    assert (error.message, error.permanent, error.retry_after) == ("no", True, None)


def test_the_tree() -> None:
    assert issubclass(BlockedURLError, FetchError) and issubclass(FetchError, IngestError)
    assert issubclass(ParseError, IngestError) and issubclass(ChannelGoneError, DeliveryError)
    assert not issubclass(DeliveryError, IngestError)
    assert not issubclass(IngestError, DeliveryError)


def test_the_drawn_tree_is_the_real_one() -> None:
    """Each class drawn in the module docstring sits under its real base, and none is missing."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (common.errors.__doc__ or "").splitlines():
        match = re.match(r"([\s│├└─]*)([A-Z]\w+Error)\b", line)
        if not match:
            continue
        depth, name = len(match[1]), match[2]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else "Exception"
        stack.append((depth, name))
    defined = [
        cls
        for cls in vars(common.errors).values()
        if isinstance(cls, type) and issubclass(cls, WatchfloorError)
    ]
    assert parents == {cls.__name__: cls.__base__.__name__ for cls in defined}
    assert set(defined) == {WatchfloorError, *ALL}


def test_kind_names_the_ingest_error() -> None:
    assert [cls("x").kind for cls in (FetchError, BlockedURLError, ParseError)] == [
        "FetchError",
        "BlockedURLError",
        "ParseError",
    ]
