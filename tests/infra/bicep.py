"""Reading infra/*.bicep offline: tree-sitter-bicep's syntax tree, and the few questions the checks ask of it.

The Bicep CLI is not on the package registries here, so the templates are parsed with tree-sitter-bicep (PyPI),
which does not know the spread operator (`...`): the templates are written without it. Values are read as
literals (strings without interpolation, booleans, numbers); anything else comes back as its source text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PARSER = Parser(Language(tree_sitter_bicep.language()))


@dataclass(frozen=True)
class Bicep:
    """One parsed template."""

    path: Path
    source: bytes
    root: Node

    def text(self, node: Node) -> str:
        """The source text of `node`."""
        return self.source[node.start_byte:node.end_byte].decode()

    def errors(self) -> list[str]:
        """ERROR and MISSING nodes, with their line and text."""
        return [f"{self.path.relative_to(ROOT)}:{n.start_point[0] + 1}: {n.type}{' (missing)' if n.is_missing else ''}"
                f" {self.text(n)[:60]!r}" for n in walk(self.root) if n.is_error or n.is_missing]

    def declarations(self, kind: str) -> dict[str, Node]:
        """Top-level declarations of a kind (module, resource, parameter, variable, output) by symbolic name."""
        found = {}
        for node in self.root.named_children:
            if node.type == f"{kind}_declaration":
                found[self.text(node.named_children[0])] = node
        return found

    def decorators(self, declaration: Node) -> list[str]:
        """The decorator names written just before a declaration (@secure(), @description(...))."""
        previous = declaration.prev_named_sibling
        if previous is None or previous.type != "decorators":
            return []
        return [self.text(d.named_children[0].named_children[0]) for d in previous.named_children]

    def type_string(self, declaration: Node) -> str:
        """A module's source or a resource's type@version (the declaration's string)."""
        return self.value(next(c for c in declaration.named_children if c.type == "string"))

    def body(self, declaration: Node) -> Node:
        """The object of a module or resource declaration (through `if (...)`)."""
        for child in declaration.named_children:
            if child.type == "object":
                return child
            if child.type == "if_statement":
                return next(c for c in child.named_children if c.type == "object")
        raise AssertionError(f"{self.text(declaration)[:80]!r} has no object body")

    def properties(self, obj: Node) -> dict[str, Node]:
        """An object's properties: key → value node."""
        assert obj.type == "object", obj.type
        found = {}
        for prop in obj.named_children:
            if prop.type != "object_property":
                continue
            parts = [c for c in prop.named_children if c.type != "comment"]
            key, value = parts[0], parts[-1]
            found[self.value(key) if key.type == "string" else self.text(key)] = value
        return found

    def get(self, obj: Node, dotted: str) -> Node:
        """The value at a dotted path of object keys (KeyError naming the path when absent)."""
        node = obj
        for key in dotted.split("."):
            props = self.properties(node)
            if key not in props:
                raise KeyError(f"{self.path.name}: no {dotted!r} (at {key!r})")
            node = props[key]
        return node

    def value(self, node: Node):
        """A literal's Python value; any other expression as its source text."""
        if node.type == "string" and all(c.type in ("string_content", "escape_sequence") for c in node.named_children):
            return "".join(self.text(c) for c in node.named_children).replace("\\'", "'")
        if node.type == "boolean":
            return self.text(node) == "true"
        if node.type == "number":
            return int(self.text(node))
        return self.text(node)

    def top_level_keys(self, node: Node) -> set[str]:
        """The keys of the objects an expression can evaluate to: objects reached through ternaries, calls
        (union(...)) and parentheses, not the objects nested inside a property's value."""
        if node.type == "object":
            return set(self.properties(node))
        keys: set[str] = set()
        for child in node.named_children:
            if child.type != "object_property":
                keys |= self.top_level_keys(child)
        return keys


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node below it, in source order."""
    yield node
    for child in node.children:
        yield from walk(child)


def parse_text(path: Path, source: str | bytes) -> Bicep:
    """A template from its text (the mutation tests parse edited copies)."""
    data = source.encode() if isinstance(source, str) else source
    return Bicep(path, data, PARSER.parse(data).root_node)


@cache
def parse(path: Path) -> Bicep:
    """A template from its file."""
    return parse_text(path, path.read_bytes())


def templates() -> list[Path]:
    """Every .bicep file under infra/ (the app's templates and any others that live there)."""
    return sorted(INFRA.rglob("*.bicep"))


def app_templates() -> list[Path]:
    """The Function App's deployment: infra/main.bicep and infra/app/*.bicep."""
    return [INFRA / "main.bicep", *sorted((INFRA / "app").glob("*.bicep"))]


def app_settings(files: list[Bicep]) -> set[str]:
    """Every app setting the templates set: the keys of the variables named *Settings (main.bicep's
    productSettings, app/api.bicep's storageSettings, monitoringSettings, durableTaskSchedulerSettings, ...)."""
    names: set[str] = set()
    for bicep in files:
        for name, declaration in bicep.declarations("variable").items():
            if name.endswith("Settings"):
                names |= bicep.top_level_keys(declaration.named_children[-1])
    return names
