"""OData query options for the simulated Graph: $filter, $select, $top, paging.

Sources:
  https://learn.microsoft.com/graph/filter-query-parameter (eq, in, startswith, and/or; directory objects
    compare strings case-insensitively; the `any` lambda, `all` "isn't supported in Microsoft Graph")
  https://learn.microsoft.com/graph/aad-advanced-queries (what directory objects support without
    ConsistencyLevel: eventual; ne / not / endsWith and $count only in advanced queries; unsupported clauses →
    400 Request_UnsupportedQuery)
  microsoft.GRAPH_FILTER_FACTS (each rule with its source and mark)
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

from . import microsoft as ms
from .errors import ServiceError

DEFAULT_PAGE_SIZE = 100   # directory objects: 100 by default, $top up to 999 (learn.microsoft.com/graph/paging)
MAX_PAGE_SIZE = 999


@dataclass(frozen=True)
class EntityType:
    """What the query options may name for one resource type."""

    name: str                      # OData type name, e.g. "application"
    resource: str                  # directory resource name used in messages, e.g. "Application"
    properties: frozenset[str]     # properties $select may name
    eq: frozenset[str]             # properties `eq` may filter on (and `ne` / `not` in advanced queries)
    startswith: frozenset[str]     # properties startswith() may filter on
    # String collections a lambda may filter on: servicePrincipalNames/any(c:c eq '…') or any(c:startswith(c,'…')).
    collections: frozenset[str] = frozenset()
    # Edm.Guid properties: compared with GUID literals, never with strings (microsoft.GRAPH_FILTER_FACTS).
    guids: frozenset[str] = frozenset()
    # endsWith(): on directory objects only in advanced queries and only on mail, otherMails, userPrincipalName and
    # proxyAddresses (aad-advanced-queries), none of which the simulated types have.
    endswith: frozenset[str] = frozenset()
    # Directory objects follow the advanced-query rules: ne / not / endsWith and $count need ConsistencyLevel:
    # eventual and $count=true (aad-advanced-queries). Role management resources are not directory objects.
    directory_object: bool = True


def _err(status: int, code: str, message: str) -> ServiceError:
    return ServiceError(status, code, message)


def _fact(key: str, **fields: Any) -> ServiceError:
    """A ServiceError from microsoft.GRAPH_ERRORS_CATALOG."""
    fact = ms.GRAPH_ERRORS_CATALOG[key]
    return ServiceError(fact["status"], fact["code"], fact["message"].format(**fields))


def unsupported_property(entity: EntityType, prop: str) -> ServiceError:
    # Observed wording for filters on properties a directory type does not support
    # (e.g. https://learn.microsoft.com/graph/aad-advanced-queries "Request_UnsupportedQuery").
    return _err(400, "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{prop}' of resource "
                f"'{entity.resource}'.")


def invalid_filter(detail: str) -> ServiceError:
    # OData parser errors: "Invalid filter clause: …" (code BadRequest); microsoft.py "invalid_filter".
    return _err(400, "BadRequest", f"Invalid filter clause: {detail}")


def advanced_query(query: dict[str, str], headers: Any) -> tuple[bool, bool]:
    """(ConsistencyLevel: eventual sent, advanced query parameters complete: that header and $count=true)."""
    eventual = (headers.get("ConsistencyLevel") or "").strip().lower() == "eventual"
    return eventual, eventual and (query.get("count") or "").lower() == "true"


# -- $filter ---------------------------------------------------------------------------------------------

# An unquoted GUID is an Edm.Guid literal (OData ABNF guidValue; Graph's own example
# `assignedLicenses/any(s:s/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)`, graph/filter-query-parameter).
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<colon>:)|"
                    r"(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
                    r"(?![0-9A-Za-z_-]))|"
                    r"(?P<word>[A-Za-z_][A-Za-z0-9_./]*)|(?P<num>-?\d+(?:\.\d+)?))")
# OData binary operator kinds, as the ODL parser names them in its type errors.
_OPERATOR_KIND = {"eq": "Equal", "ne": "NotEqual"}


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


def parse_filter(text: str, entity: EntityType, advanced: bool = False) -> Predicate:
    """Compile a $filter expression into a predicate: eq, in, startswith(), and, or, parentheses, the `any`
    lambda over string collections, and (advanced queries on directory objects only) ne, not, endsWith()."""
    tokens = _tokenize(text)
    pos = 0
    lambda_var: str | None = None   # the range variable inside any(…)

    def peek(offset: int = 0) -> tuple[str, str, int] | None:
        return tokens[pos + offset] if pos + offset < len(tokens) else None

    def take(kind: str | None = None, value: str | None = None) -> tuple[str, str, int]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise invalid_filter(f"Syntax error at position {len(text)} in '{text}'.")
        if (kind and tok[0] != kind) or (value and tok[1].lower() != value):
            raise invalid_filter(f"Syntax error at position {tok[2]} in '{text}'.")
        pos += 1
        return tok

    def literal() -> tuple[Any, str | None]:
        """A literal and its EDM type (None for null)."""
        kind, value, at = take()
        if kind == "str":
            return value[1:-1].replace("''", "'"), "Edm.String"
        if kind == "guid":
            return value.lower(), "Edm.Guid"
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true", "Edm.Boolean"
        if kind == "word" and value.lower() == "null":
            return None, None
        if kind == "num":
            return (float(value), "Edm.Double") if "." in value else (int(value), "Edm.Int32")
        raise invalid_filter(f"Syntax error at position {at} in '{text}'.")

    def needs_advanced(operator: str) -> None:
        """ne / not / endsWith on directory objects: only with ConsistencyLevel: eventual and $count=true."""
        if entity.directory_object and not advanced:
            raise _fact("advanced_query_required", operator=operator)

    def getter(prop: str) -> Callable[[Any], Any]:
        """Reads `prop` of an object, or the collection item itself for the range variable (bound now)."""
        if prop == lambda_var:
            return lambda item: item
        return lambda obj: obj.get(prop) if isinstance(obj, dict) else None

    def check_property(prop: str, allowed: frozenset[str]) -> None:
        if prop == lambda_var:
            return
        if prop not in allowed:
            raise unsupported_property(entity, prop)

    def check_types(prop: str, edm: str | None, op: str) -> None:
        """Edm.Guid properties take GUID literals, string properties take strings (microsoft.GRAPH_FILTER_FACTS)."""
        declared = "Edm.Guid" if prop in entity.guids else "Edm.String"
        if {declared, edm} == {"Edm.Guid", "Edm.String"}:
            raise _fact("filter_incompatible_operands", left=declared, right=edm,
                        kind=_OPERATOR_KIND.get(op, op))

    def string_function(name: str) -> Predicate:
        take("word")
        take("lp")
        prop = take("word")[1]
        take("comma")
        value, _ = literal()
        take("rp")
        if name == "endswith":
            needs_advanced("endsWith")
            check_property(prop, entity.endswith)
        else:
            check_property(prop, entity.startswith)
        if not isinstance(value, str):
            raise invalid_filter(f"{name}() needs a string in '{text}'.")
        wanted, read = value.casefold(), getter(prop)

        def matches(obj: Any) -> bool:
            found = read(obj)
            if not isinstance(found, str):
                return False
            return found.casefold().endswith(wanted) if name == "endswith" else found.casefold().startswith(wanted)

        return matches

    def lambda_expression(collection: str, operator: str) -> Predicate:
        nonlocal lambda_var
        if operator == "all":
            # "Currently, it isn't supported in Microsoft Graph." (graph/filter-query-parameter, "all operator")
            raise _fact("filter_all_unsupported")
        if collection not in entity.collections:
            raise unsupported_property(entity, collection)
        if lambda_var is not None:
            raise invalid_filter(f"Syntax error at position {tokens[pos - 1][2]} in '{text}'.")
        take("lp")
        variable = take("word")[1]
        if "/" in variable or "." in variable:
            raise invalid_filter(f"Syntax error at position {tokens[pos - 1][2]} in '{text}'.")
        take("colon")
        lambda_var = variable
        try:
            inner = disjunction()
        finally:
            lambda_var = None
        take("rp")

        def matches(obj: dict) -> bool:
            items = obj.get(collection) or []
            return any(inner(item) for item in items)

        return matches

    def comparison() -> Predicate:
        prop = take("word")[1]
        op_tok = take("word")
        op = op_tok[1].lower()
        if op not in ("eq", "ne", "gt", "ge", "lt", "le", "in", "has"):
            raise invalid_filter(f"Syntax error at position {op_tok[2]} in '{text}'.")
        if op not in ("eq", "ne", "in"):
            raise _err(400, "Request_UnsupportedQuery", f"Unsupported query operator '{op}' for property "
                                                        f"'{prop}' of resource '{entity.resource}'.")
        if op == "in":
            # "The in operator is supported by default whenever eq operator is supported by default."
            # (graph/aad-advanced-queries)
            take("lp")
            values = [literal()]
            while (tok := peek()) is not None and tok[0] == "comma":
                take("comma")
                values.append(literal())
            take("rp")
            check_property(prop, entity.eq)
            for _, edm in values:
                check_types(prop, edm, "in")
            wanted_set, read = {_norm(v) for v, _ in values}, getter(prop)
            return lambda obj: _norm(read(obj)) in wanted_set
        value, edm = literal()
        check_property(prop, entity.eq)
        check_types(prop, edm, op)
        if op == "ne":
            needs_advanced("ne")
        wanted, read = _norm(value), getter(prop)
        if op == "eq":
            return lambda obj: _norm(read(obj)) == wanted
        return lambda obj: _norm(read(obj)) != wanted

    def primary() -> Predicate:
        tok = peek()
        if tok is None:
            raise invalid_filter(f"Syntax error at position {len(text)} in '{text}'.")
        if tok[0] == "lp":
            take("lp")
            inner = disjunction()
            take("rp")
            return inner
        if tok[0] != "word":
            raise invalid_filter(f"Syntax error at position {tok[2]} in '{text}'.")
        word = tok[1].lower()
        following = peek(1)
        if word == "not":
            if not entity.directory_object:
                raise _fact("unsupported_query")
            needs_advanced("not")
            take("word")
            negated = primary()
            return lambda obj: not negated(obj)
        if word in ("startswith", "endswith") and following is not None and following[0] == "lp":
            return string_function(word)
        if following is not None and following[0] == "lp" and "/" in tok[1]:
            collection, _, operator = tok[1].rpartition("/")
            if operator.lower() in ("any", "all"):
                take("word")
                return lambda_expression(collection, operator.lower())
        return comparison()

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
