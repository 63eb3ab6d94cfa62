"""YAML with line numbers and ``${VAR}`` substitution, so config errors can say FILE:LINE."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What aliases may add to a file's own nodes and text: far beyond any real use of anchors, far
# below what could hurt (validation walks the expanded data). A file without aliases is bound
# by the file cap alone (worker.config.MAX_FILE_BYTES): 20,000 feeds are 180,000 nodes.
MAX_NODES = 100_000
MAX_CHARS = 4_000_000
MAX_YAML_DEPTH = 64
# libyaml when PyYAML was built with it (a 30 MB comment: 0.3 s, against minutes)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


@dataclass
class YamlDocument:
    file: str
    data: Any
    lines: dict[Path_, int]
    issues: list[ConfigIssue]
    unset: set[Path_] = field(default_factory=set)  # values with a missing ${VAR}, reported

    def reported(self, path: Path_) -> bool:
        """True when a problem under ``path`` follows from a missing ``${VAR}`` already
        reported there, so validation need not add a second, misleading one."""
        known = self.known(path)
        return any(known[: len(p)] == p for p in self.unset)

    def known(self, path: Path_) -> Path_:
        """The deepest node along ``path`` present in the file (pydantic locs hold extra parts)."""
        known: Path_ = ()
        for part in path:
            if (*known, part) in self.lines:
                known = (*known, part)
        return known

    def line_of(self, path: Path_) -> int:
        return self.lines.get(self.known(path), 1)

    def field_of(self, path: Path_) -> str:
        """Known path plus the last part when it is missing from the file (a required field)."""
        known = self.known(path)
        if path and known[-1:] != path[-1:] and isinstance(path[-1], str):
            known = (*known, path[-1])
        return field_name(known)


def field_name(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> YamlDocument:
    """Parse ``text``; problems go to ``doc.issues``, never raise.

    An anchor used through aliases is built once and shared, as ``yaml.safe_load`` does, so
    the work is linear in the file, not in what its aliases expand to. The expanded size is
    still what validation walks, so a file that expands past ``MAX_NODES`` is refused.
    """
    doc = YamlDocument(file, None, {}, [])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            if (problem := _too_big(node)) is not None:
                doc.issues.append(ConfigIssue(file, problem[0], "(yaml)", problem[1]))
                return doc
            builder = _Builder(doc, loader, os.environ if env is None else env)
            doc.data = builder.build(node, ())
    except yaml.YAMLError as exc:
        doc.issues.append(ConfigIssue(file, *_yaml_problem(exc)))
    except RecursionError:
        deep = f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep"
        doc.issues.append(ConfigIssue(file, 1, "(yaml)", deep))
    finally:
        loader.dispose()
    return doc


def _yaml_problem(exc: yaml.YAMLError) -> tuple[int, str, str]:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else 1
    problem = getattr(exc, "problem", None) or str(exc)
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start:
        problem += f" ({context} at line {start.line + 1})"
    return line, "(yaml)", f"invalid YAML: {problem}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _too_big(root: yaml.Node) -> tuple[int, str] | None:
    """(line, problem) when the document is nested too deeply or its aliases add more than
    ``MAX_NODES`` nodes (or ``MAX_CHARS`` of text) to what the file itself holds. Each distinct
    node is sized once (iteratively, children first), so a billion-laughs costs as much as its
    few hundred bytes. Children come first, so a node's distinct descendants are all counted
    in ``len(size)`` when it is sized: without aliases its size never exceeds that count."""
    size: dict[int, int] = {}
    chars: dict[int, int] = {}
    distinct_chars = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack[-1]
        if id(node) in size:
            stack.pop()
            continue
        if depth > MAX_YAML_DEPTH:
            return node.start_mark.line + 1, f"nested more than {MAX_YAML_DEPTH} levels deep"
        pending = [c for c in _children(node) if id(c) not in size]
        if pending:
            stack.extend((child, depth + 1) for child in pending)
            continue
        stack.pop()
        children = _children(node)
        size[id(node)] = 1 + sum(size[id(c)] for c in children)
        own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
        chars[id(node)] = own + sum(chars[id(c)] for c in children)
        distinct_chars += own
        if size[id(node)] > MAX_NODES + len(size):
            problem = f"aliases expand this to more than {MAX_NODES:,} values (an alias bomb?)"
            return node.start_mark.line + 1, problem
        if chars[id(node)] > MAX_CHARS + distinct_chars:
            problem = f"holds more than {MAX_CHARS:,} characters of text, aliases expanded"
            return node.start_mark.line + 1, problem
    return None


class _Builder:
    """Plain data from the node graph, recording the line of every path."""

    def __init__(self, doc: YamlDocument, loader: Any, env: Mapping[str, str]) -> None:
        self.doc, self.loader, self.env = doc, loader, env
        self.built: dict[int, Any] = {}  # an aliased node is built once, then shared

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.lines[path] = node.start_mark.line + 1
        if id(node) not in self.built:
            self.built[id(node)] = self._construct(node, path)
        return self.built[id(node)]

    def _construct(self, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    line = key_node.start_mark.line + 1
                    problem = "a key must be plain text, not a list or mapping"
                    self.doc.issues.append(ConfigIssue(self.doc.file, line, "(yaml)", problem))
                    continue
                if key in out:
                    line = key_node.start_mark.line + 1
                    self.doc.issues.append(
                        ConfigIssue(self.doc.file, line, str(key), "duplicate key")
                    )
                out[key] = self.build(value_node, (*path, _part(key)))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        value = self.loader.construct_object(node)
        return _substitute(value, path, self.doc, self.env) if isinstance(value, str) else value


def _part(key: object) -> str | int:
    """A mapping key as a path part: ints stay (list-like keys), the rest as text."""
    return key if isinstance(key, int) and not isinstance(key, bool) else str(key)


def _substitute(value: str, path: Path_, doc: YamlDocument, env: Mapping[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problem = f"environment variable {name} is not set (write ${{{name}:-default}} for one)"
        doc.issues.append(ConfigIssue(doc.file, doc.lines[path], field_name(path), problem))
        doc.unset.add(path)
        return ""

    return _VAR.sub(replace, value)
