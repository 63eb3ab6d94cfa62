"""Errors of the ingestion stage.

IngestError
├── FetchError            network, HTTP status, limits, refused address
│   └── BlockedURLError   SSRF guard: the address is not allowed
└── ParseError            the body is not a feed we can read
"""

from __future__ import annotations


class IngestError(Exception):
    """Base: carries whether retrying can help and how long to wait."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

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
