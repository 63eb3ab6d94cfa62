"""YAML with line numbers and ``${VAR}`` substitution, so config errors can say FILE:LINE."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    doc = YamlDocument(file, None, {}, [])
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += f" ({context} at line {start.line + 1})"
        doc.issues.append(ConfigIssue(file, line, "(yaml)", f"invalid YAML: {problem}"))
        return doc
    finally:
        loader.dispose()
    if node is not None:
        doc.data = _build(node, (), doc, loader, os.environ if env is None else env)
    return doc


def _build(node: yaml.Node, path: Path_, doc: YamlDocument, loader: Any, env: Mapping) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in out:
                doc.issues.append(
                    ConfigIssue(doc.file, key_node.start_mark.line + 1, str(key), "duplicate key")
                )
            out[key] = _build(value_node, (*path, key), doc, loader, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, (*path, i), doc, loader, env) for i, child in enumerate(node.value)]
    value = loader.construct_object(node)
    return _substitute(value, path, doc, env) if isinstance(value, str) else value


def _substitute(value: str, path: Path_, doc: YamlDocument, env: Mapping) -> str:
    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problem = f"environment variable {name} is not set (write ${{{name}:-default}} for one)"
        doc.issues.append(ConfigIssue(doc.file, doc.lines[path], field_name(path), problem))
        return ""

    return _VAR.sub(replace, value)
