"""Pydantic's validation errors in an admin's words.

``Extra inputs are not permitted`` becomes ``unknown key 'chanels' (did you mean
'channels'?)``: the keys allowed at the error's place come from the model's JSON schema,
which knows field aliases (``from``) and which channel type a ``type:`` picked.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic_core import ErrorDetails

Schema = Mapping[str, Any]
SLUG_HINT = "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def admin_message(err: ErrorDetails, root: Schema) -> str:
    """One error, said the way an admin editing YAML thinks of it."""
    loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = sorted(_properties(_schema_at(root, loc[:-1])))
        known = f"; known keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {key!r}{did_you_mean(key, allowed)}{known}"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing"
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        tag = str(ctx.get("tag", value))
        return f"unknown type {tag!r}{did_you_mean(tag, tags)}; known types: {', '.join(tags)}"
    if kind == "union_tag_not_found":
        return f"missing required key {ctx.get('discriminator', 'type')!r}".replace("'''", "'")
    if kind == "literal_error":
        expected = [
            e.strip(" '") for e in str(ctx.get("expected", "")).replace(" or ", ",").split(",")
        ]
        hint = did_you_mean(str(value), expected) if isinstance(value, str) else ""
        return f"{value!r} is not one of {', '.join(expected)}{hint}"
    if kind == "string_pattern_mismatch":
        return _pattern_message(str(ctx.get("pattern", "")), value)
    return _SIMPLE.get(kind, _plain)(err)


def _pattern_message(pattern: str, value: object) -> str:
    if "a-z0-9" in pattern:
        return f"{value!r} is not a valid id: use {SLUG_HINT}"
    if "https?" in pattern:
        return f"{value!r} is not an http:// or https:// URL"
    return f"{value!r} does not have the expected form {pattern}"


def _plain(err: ErrorDetails) -> str:
    message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def _got(err: ErrorDetails) -> str:
    value = err.get("input")
    return f"a list ({value!r})" if isinstance(value, list) else repr(value)[:80]


_SIMPLE: dict[str, Callable[[ErrorDetails], str]] = {
    "bool_parsing": lambda e: f"must be true or false, not {_got(e)}",
    "bool_type": lambda e: f"must be true or false, not {_got(e)}",
    "int_parsing": lambda e: f"must be a whole number, not {_got(e)}",
    "int_type": lambda e: f"must be a whole number, not {_got(e)}",
    "string_type": lambda e: f"must be text, not {_got(e)}",
    "list_type": lambda e: f"must be a list (e.g. [a, b]), not {_got(e)}",
    "tuple_type": lambda e: f"must be a list (e.g. [a, b]), not {_got(e)}",
    "dict_type": lambda e: f"must be a mapping of keys to values, not {_got(e)}",
    "model_type": lambda e: f"must be a mapping of keys to values, not {_got(e)}",
    "model_attributes_type": lambda e: f"must be a mapping of keys to values, not {_got(e)}",
}


def _schema_at(root: Schema, loc: Sequence[str | int]) -> Schema:
    """The schema of the value at ``loc`` (pydantic locs hold a union's tag as a part)."""
    node = _resolve(root, root)
    for part in loc:
        node = _step(root, node, part)
    return node


def _step(root: Schema, node: Schema, part: str | int) -> Schema:
    mapping = (node.get("discriminator") or {}).get("mapping") or {}
    if isinstance(part, str) and part in mapping:
        return _resolve(root, {"$ref": mapping[part]})
    if isinstance(part, int):
        items = node.get("items") or {}
        return _resolve(root, items)
    properties = _properties(node)
    if part in properties:
        return _resolve(root, properties[part])
    return _resolve(root, node.get("additionalProperties") or {})


def _resolve(root: Schema, node: Schema) -> Schema:
    """Follow ``$ref``s; an optional value (``anyOf`` with null) is its non-null member."""
    for _ in range(20):  # refs in our models are shallow; the cap keeps a cycle finite
        if "$ref" in node:
            node = root.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
        elif "anyOf" in node and not node.get("discriminator"):
            members = [m for m in node["anyOf"] if m.get("type") != "null"]
            if len(members) != 1:
                return node
            node = members[0]
        else:
            return node
    return node


def _properties(node: Schema) -> Mapping[str, Any]:
    properties = node.get("properties")
    return properties if isinstance(properties, Mapping) else {}
