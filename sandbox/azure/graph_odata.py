"""OData query options for the simulated Graph: $filter, $select, $top, paging.

Sources:
  https://learn.microsoft.com/graph/filter-query-parameter (eq, startswith, and/or; directory objects
    compare strings case-insensitively)
  https://learn.microsoft.com/graph/aad-advanced-queries (what directory objects support without
    ConsistencyLevel: eventual; unsupported clauses → 400 Request_UnsupportedQuery)
  https://learn.microsoft.com/graph/paging ($top 1-999 on directory objects, @odata.nextLink with $skiptoken)
  https://learn.microsoft.com/graph/query-parameters#select ($select; unknown property → 400)
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ServiceError

DEFAULT_PAGE_SIZE = 100   # directory objects: 100 by default, $top up to 999 (learn.microsoft.com/graph/paging)
MAX_PAGE_SIZE = 999


@dataclass(frozen=True)
class EntityType:
    """What the query options may name for one resource type."""

    name: str                      # OData type name, e.g. "application"
    resource: str                  # directory resource name used in messages, e.g. "Application"
    properties: frozenset[str]     # properties $select may name
    eq: frozenset[str]             # properties `eq` may filter on
    startswith: frozenset[str]     # properties startswith() may filter on


def _err(status: int, code: str, message: str) -> ServiceError:
    return ServiceError(status, code, message)


def unsupported_property(entity: EntityType, prop: str) -> ServiceError:
    # Observed wording for filters on properties a directory type does not support
    # (e.g. https://learn.microsoft.com/graph/aad-advanced-queries "Request_UnsupportedQuery").
    return _err(400, "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{prop}' of resource "
                f"'{entity.resource}'.")


def invalid_filter(detail: str) -> ServiceError:
    # OData parser errors: "Invalid filter clause: …" (code BadRequest); microsoft.py "invalid_filter".
    return _err(400, "BadRequest", f"Invalid filter clause: {detail}")


# -- $filter ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|"
                    r"(?P<word>[A-Za-z_][A-Za-z0-9_./]*)|(?P<num>-?\d+(?:\.\d+)?))")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid_filter(f"Syntax error: character '{text[pos:].strip()[0]}' is not valid at position "
                                 f"{pos} in '{text}'.")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


Predicate = Callable[[dict], bool]


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def parse_filter(text: str, entity: EntityType) -> Predicate:
    """Compile a $filter expression (eq, startswith(), and, or, parentheses) into a predicate."""
    tokens = _tokenize(text)
    pos = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(kind: str | None = None, value: str | None = None) -> tuple[str, str, int]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise invalid_filter(f"Syntax error at position {len(text)} in '{text}'.")
        if (kind and tok[0] != kind) or (value and tok[1].lower() != value):
            raise invalid_filter(f"Syntax error at position {tok[2]} in '{text}'.")
        pos += 1
        return tok

    def literal() -> Any:
        kind, value, at = take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        if kind == "num":
            return float(value) if "." in value else int(value)
        raise invalid_filter(f"Syntax error at position {at} in '{text}'.")

    def primary() -> Predicate:
        tok = peek()
        if tok is None:
            raise invalid_filter(f"Syntax error at position {len(text)} in '{text}'.")
        if tok[0] == "lp":
            take("lp")
            inner = disjunction()
            take("rp")
            return inner
        if tok[0] == "word" and tok[1].lower() == "not":
            raise _err(400, "Request_UnsupportedQuery", "Unsupported query.")
        if tok[0] == "word" and tok[1].lower() == "startswith" and pos + 1 < len(tokens) \
                and tokens[pos + 1][0] == "lp":
            take("word")
            take("lp")
            prop = take("word")[1]
            take("comma")
            value = literal()
            take("rp")
            if prop not in entity.startswith:
                raise unsupported_property(entity, prop)
            if not isinstance(value, str):
                raise invalid_filter(f"startswith() needs a string in '{text}'.")
            wanted = value.casefold()
            return lambda obj: isinstance(obj.get(prop), str) and obj[prop].casefold().startswith(wanted)
        prop = take("word")[1]
        op_tok = take("word")
        op = op_tok[1].lower()
        if op not in ("eq", "ne", "gt", "ge", "lt", "le", "in", "has"):
            raise invalid_filter(f"Syntax error at position {op_tok[2]} in '{text}'.")
        if op != "eq" and op != "ne":
            raise _err(400, "Request_UnsupportedQuery", f"Unsupported query operator '{op}' for property "
                                                        f"'{prop}' of resource '{entity.resource}'.")
        value = literal()
        if prop not in entity.eq:
            raise unsupported_property(entity, prop)
        wanted = _norm(value)
        if op == "eq":
            return lambda obj: _norm(obj.get(prop)) == wanted
        return lambda obj: _norm(obj.get(prop)) != wanted

    def conjunction() -> Predicate:
        parts = [primary()]
        while (tok := peek()) is not None and tok[0] == "word" and tok[1].lower() == "and":
            take()
            parts.append(primary())
        return lambda obj: all(p(obj) for p in parts)

    def disjunction() -> Predicate:
        parts = [conjunction()]
        while (tok := peek()) is not None and tok[0] == "word" and tok[1].lower() == "or":
            take()
            parts.append(conjunction())
        return lambda obj: any(p(obj) for p in parts)

    if not tokens:
        raise invalid_filter(f"The query specified in the URI is not valid. '{text}'.")
    predicate = disjunction()
    if pos != len(tokens):
        raise invalid_filter(f"Syntax error at position {tokens[pos][2]} in '{text}'.")
    return predicate


# -- $select ---------------------------------------------------------------------------------------------

def parse_select(text: str | None, entity: EntityType) -> list[str] | None:
    """The $select list (validated), or None when absent."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in entity.properties:
            # Observed Graph wording for an unknown $select property (code BadRequest).
            raise _err(400, "BadRequest", f"Parsing OData Select and Expand failed: Could not find a property "
                                          f"named '{name}' on type 'microsoft.graph.{entity.name}'.")
    return names


def apply_select(obj: dict, select: list[str] | None) -> dict:
    """Project an object to the selected properties (Graph returns null for unset ones).

    Graph always includes `id` for entities, even when not selected (learn.microsoft.com/graph/query-parameters#select).
    """
    if select is None:
        return obj
    out = {}
    if "id" in obj and "id" not in select:
        out["id"] = obj["id"]
    for name in select:
        out[name] = obj.get(name)
    return out


def select_suffix(select: list[str] | None) -> str:
    """The (a,b) part of @odata.context for a projection."""
    return f"({','.join(select)})" if select else ""


# -- $top / paging ---------------------------------------------------------------------------------------

def page(items: list[dict], query: dict[str, str], next_url: Callable[[str], str]) -> tuple[list[dict], str | None]:
    """Apply $top and $skiptoken: the page and the @odata.nextLink (or None)."""
    size = DEFAULT_PAGE_SIZE
    if "top" in query:
        raw = query["top"]
        if not re.fullmatch(r"\d+", raw or "") or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            # Observed: "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
            raise _err(400, "Request_BadRequest",
                       f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
        size = int(raw)
    start = 0
    if "skiptoken" in query:
        try:
            decoded = base64.urlsafe_b64decode(query["skiptoken"] + "=" * (-len(query["skiptoken"]) % 4)).decode()
            if not decoded.startswith("sbx:"):
                raise ValueError(decoded)
            start = int(decoded[4:])
        except (ValueError, UnicodeDecodeError) as exc:
            raise _err(400, "Request_BadRequest", "Invalid paging token.") from exc  # UNCONFIRMED wording
    chunk = items[start:start + size]
    if start + size < len(items):
        token = base64.urlsafe_b64encode(f"sbx:{start + size}".encode()).decode().rstrip("=")
        return chunk, next_url(token)
    return chunk, None


def next_link(base_path_url: str, query: dict[str, str], token: str) -> str:
    """Rebuild the request URL with a new $skiptoken."""
    params = {f"${k}": v for k, v in query.items() if k != "skiptoken"}
    params["$skiptoken"] = token
    return base_path_url + "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


SUPPORTED_OPTIONS = {"filter", "select", "top", "skiptoken", "count"}


def check_options(query: dict[str, str], allowed: set[str] = SUPPORTED_OPTIONS) -> None:
    """Reject query options the sandbox does not model (so a product relying on them notices)."""
    for name in query:
        if name in ("expand", "orderby", "search", "skip", "format", "apply") and name not in allowed:
            raise _err(400, "Request_UnsupportedQuery",
                       f"The query option '${name}' is not supported by the sandbox for this request.")
