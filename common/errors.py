"""Every error the service raises on purpose, in one tree, so the worker reads one shape.

WatchfloorError                 ``permanent``: retrying cannot help; ``retry_after``: seconds
│                               the other side asked us to wait (or None)
├── IngestError                 feeds: a feed could not be read; ``kind`` names the class
│   ├── FetchError              network, HTTP status, limits, refused address
│   │   └── BlockedURLError     SSRF guard: the address is not allowed (always permanent)
│   └── ParseError              the body is not a feed we can read
│       └── SelectorError       a page source's selectors found nothing (a redesign?)
└── DeliveryError               alerts: a channel's send failed
    └── ChannelGoneError        the receiver says the endpoint is gone (HTTP 410): disable the
                                channel (always permanent)

The concrete classes live here rather than in feeds/ and alerts/ because the SSRF guard
(``common.guard``) raises FetchError and BlockedURLError for feeds and webhooks alike.
"""

from __future__ import annotations


class WatchfloorError(Exception):
    """Base: carries whether retrying can help and how long to wait."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class IngestError(WatchfloorError):
    """Fetching or parsing a feed failed; stored on the feed as ``kind: message``."""

    @property
    def kind(self) -> str:
        return type(self).__name__


class FetchError(IngestError):
    pass


class BlockedURLError(FetchError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class ParseError(IngestError):
    pass


class SelectorError(ParseError):
    """A page source's selectors matched nothing: the page changed, or never fit."""


class DeliveryError(WatchfloorError):
    """A channel could not deliver; the worker retries it unless ``permanent``."""


class ChannelGoneError(DeliveryError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)
