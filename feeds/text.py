"""Plain, safe text from feed text.

HTML goes through a real parser (``html.parser``), never a regex, so entities are decoded
once and tags never glue words together. What comes out is safe to put in an email subject,
a JSON payload or a database column: no C0/C1 control characters, no lone surrogates, no
bidirectional overrides (they can make an alert read differently from what it says), one
space between words, and a bounded length.

No value is cut before it is read, so keywords behind 500 kB of markup are kept; the work
is linear and stops once there is more text than ``limit`` keeps. As ``html.parser`` spends
about 1 µs per character of markup, long runs of bare tags (``<div>`` nested 50,000 deep)
are first squeezed by a regex into tags of the same effect. The parser still reads every
tag that is left, so the regex only removes work and never decides what is text.
"""

from __future__ import annotations

import codecs
import contextlib
import html
import re
from html.parser import HTMLParser

# Deleted outright: C0 except whitespace, DEL, C1 except NEL, lone surrogates, BOM,
# noncharacters, bidi embeddings/overrides/isolates. The whitespace-like controls
# (\t \n \v \f \r \x1c-\x1f \x85) are folded into single spaces by _SPACES instead.
_DELETE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff"
    "\u202a-\u202e\u2066-\u2069]"
)
_SPACES = re.compile(r"\s+")
# fmt: off
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
# fmt: on
_SKIP_TAGS = frozenset({"script", "style", "template"})
ELLIPSIS = "…"
# A bare start or end tag has no attributes, so no quote, "-" or "]" that could end an
# attribute value, a comment or a CDATA section that a run of them sits in. Possessive
# quantifiers: a run is read once, never backtracked into. Runs of fewer than 8 tags cost
# the parser less than squeezing them would.
_BARE_TAG = r"</?+[A-Za-z][A-Za-z0-9]*+\s*+/?+>"
_TAG_RUN = re.compile(rf"({_BARE_TAG})((?:\s*+{_BARE_TAG}){{7,}}+)")
_TAG_NAME = re.compile(r"</?([a-z][a-z0-9]*)")  # in lower-cased markup
_SPACE_BETWEEN = re.compile(r"(?:^|>)\s")  # whitespace before a tag of the run's rest


class _Enough(Exception):
    """Stops the parser: it holds more text than the caller will keep."""


class _TextExtractor(HTMLParser):
    """Collects character data; block tags become spaces; script/style content is dropped."""

    def __init__(self, enough: int | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self._room = enough  # visible characters still wanted (None: all of them)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self._room is None:
            self.parts.append(data)
            return
        folded = _fold_head(data, self._room)
        self.parts.append(folded)
        self._room -= len(folded) - folded.count(" ")
        if self._room < 0:
            raise _Enough


def strip_html(markup: str, enough: int | None = None) -> str:
    """The text of an HTML fragment, entities decoded (whitespace not yet collapsed).

    With ``enough``, parsing stops once more than that many visible characters are in: the
    caller cuts there anyway. The parser is fed the whole value at once, because html.parser
    fed in pieces reads some broken markup (an unclosed quote) differently at each cut.
    """
    if "<" not in markup and "&" not in markup:
        return markup
    parser = _TextExtractor(enough)
    try:
        parser.feed(_TAG_RUN.sub(_squeeze, markup))
    except _Enough:
        return "".join(parser.parts)
    # What the parser holds back is an unfinished tag or comment (dropped: a feed cut its
    # summary mid-tag) or text near a trailing "&" (kept). close() would emit both as text.
    # An unclosed script or style holds back all that follows it: dropped too.
    rest = "" if parser.skipping else parser.rawdata
    return "".join(parser.parts) + ("" if rest.startswith("<") else html.unescape(rest))


def _squeeze(run: re.Match[str]) -> str:
    """A run of bare tags as its first tag plus one ``<br>``, a space or nothing.

    The first tag stays as it is, because it may be what ends a construct the run begins
    in (a bogus comment, an unquoted attribute: ``<!x <b>``). After it the parser reads
    plain tags, so all the others do is break words or not; a run with script, style or
    template (which change what is text) is left whole.
    """
    first, rest = run.groups()
    names = _names(rest)
    if not _SKIP_TAGS.isdisjoint(names | _names(first)):
        return run.group()
    if not _BLOCK_TAGS.isdisjoint(names):
        return first + "<br>"
    return first + (" " if _SPACE_BETWEEN.search(rest) else "")


def _names(tags: str) -> set[str]:
    return set(_TAG_NAME.findall(tags.lower()))


def collapse(text: str) -> str:
    """Delete control/format characters, then fold every run of whitespace into one space."""
    return _SPACES.sub(" ", _DELETE.sub("", text)).strip()


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def clean_text(text: object, *, html: bool, limit: int) -> str:
    """Feed text (maybe HTML, maybe not even a str) as one clean line of at most ``limit``."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    if html:
        value = strip_html(value, enough=limit)
    return truncate(_fold_head(value, limit).strip(), limit)


def _fold_head(text: str, enough: int) -> str:
    """``collapse`` without the strip, of as much of ``text`` as holds ``enough`` visible
    characters and one more (or of all of it).

    Folding slice by slice gives the same text as folding the whole, so a 10 MB value costs
    only the slices it takes, yet no run of spaces can hide the words behind it.
    """
    folded, size = "", max(enough * 8, 4096)
    for start in range(0, len(text), size):
        folded = _SPACES.sub(" ", _DELETE.sub("", folded + text[start : start + size]))
        if len(folded) - folded.count(" ") > enough:
            break
    return folded


# --- bytes to text -------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
# "<?" in encodings that are not ASCII-compatible (XML 1.0, appendix F).
_MARKERS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),
)
_XML_ENCODING = re.compile(
    rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']"""
)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
# Labels that servers and feeds use for a superset encoding (as browsers read them, WHATWG).
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "tis-620": "cp874",
    "iso8859-9": "cp1254",
}
# A server default rather than a statement about this document: the XML declaration wins.
_WEAK_HTTP = frozenset({"cp1252"})


def charset_of(content_type: str | None) -> str | None:
    match = _CHARSET.search(content_type or "")
    return match.group(1) if match else None


def decode_body(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a feed document; return (text, encoding used).

    BOM first; then UTF-8 when the bytes are valid UTF-8 (legacy text almost never is);
    then the HTTP charset and the XML declaration, the declaration first when the header
    names a server default like ISO-8859-1; then windows-1252; then UTF-8 with U+FFFD.
    """
    for mark, encoding in _BOMS:
        if body.startswith(mark):
            with contextlib.suppress(UnicodeDecodeError):
                return body[len(mark) :].decode(encoding), encoding
    for marker, encoding in _MARKERS:
        if body.startswith(marker):
            with contextlib.suppress(UnicodeDecodeError):
                return body.decode(encoding), encoding
    with contextlib.suppress(UnicodeDecodeError):
        return body.decode("utf-8"), "utf-8"
    for encoding in _candidates(body, content_type):
        with contextlib.suppress(UnicodeDecodeError):
            return body.decode(encoding), encoding
    return body.decode("utf-8", "replace"), "utf-8"


def _candidates(body: bytes, content_type: str | None) -> list[str]:
    declared = _XML_ENCODING.match(body[:1024])
    xml = _codec(declared.group(1).decode("ascii")) if declared else None
    http = _codec(charset_of(content_type))
    order = [xml, http] if http in _WEAK_HTTP else [http, xml]
    return [e for e in dict.fromkeys([*order, "cp1252"]) if e and not e.startswith("utf-16")]


def _codec(label: str | None) -> str | None:
    """Python's codec name for an encoding label, widened to its common superset."""
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)
