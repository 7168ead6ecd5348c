"""The customer's administrator, played by running a generated script's own calls (issue 10, item 8).

The script is parsed with tree-sitter-powershell and interpreted: a small evaluator for the few constructs
shared/powershell.py emits (assignments, if / else, foreach, -not / -and / -eq, `+`, single-quoted literals,
[char] / [datetime] casts, [Convert]::FromBase64String, @( ), @{ }, member access, exit, throw). Anything else
fails loudly with UnknownConstruct, so the evaluator can't silently skip what PowerShell would run.

Each Microsoft Graph cmdlet the script invokes is mapped to the REST call its documentation names, with the
parameters the script gives (path parameters, -Filter / -All, body properties), and performed against the
simulator's Graph with the token the `connect` callback returns for Connect-MgGraph's tenant and scopes. A
cmdlet the mapping doesn't know fails with UnknownCmdlet naming it. This is test code: it interprets the
product's output, it is not part of the sandbox.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import tree_sitter_powershell as tsp
from tree_sitter import Language, Node, Parser, Tree

PARSER = Parser(Language(tsp.language()))
# PowerShell's tokenizer takes these for single quotes (CharExtensions.IsSingleQuote); kept here on purpose
# rather than imported from the product, which this module checks.
PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
MODULE_DOCS = "https://learn.microsoft.com/powershell/module"
GRAPH_DOCS = "https://learn.microsoft.com/graph/api"


class UnknownConstruct(AssertionError):
    """The script uses a construct the evaluator does not implement."""


class UnknownCmdlet(AssertionError):
    """The script invokes a cmdlet the mapping does not know."""


class ScriptExit(Exception):
    """`exit N` ran."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the script exited with {code}")
        self.code = code


class ScriptThrow(Exception):
    """`throw` ran (or a cmdlet failed: the script sets $ErrorActionPreference = 'Stop')."""


# -- parsing --------------------------------------------------------------------------------------------

def parse(script: str | bytes) -> tuple[Tree, bytes]:
    """The tree-sitter tree of a script, and the source bytes it indexes (a UTF-8 BOM is dropped)."""
    source = script.encode() if isinstance(script, str) else script
    source = source.removeprefix(b"\xef\xbb\xbf")
    return PARSER.parse(source), source


def walk(node: Node) -> Iterator[Node]:
    """`node` and all its descendants, in source order."""
    yield node
    for child in node.children:
        yield from walk(child)


def syntax_errors(tree: Tree, source: bytes) -> list[str]:
    """The ERROR and MISSING nodes of a tree, with their text."""
    return [f"{n.type}{' (missing)' if n.is_missing else ''} at byte {n.start_byte}: "
            f"{source[n.start_byte:n.end_byte][:60]!r}"
            for n in walk(tree.root_node) if n.is_error or n.is_missing]


def command_names(tree: Tree, source: bytes) -> list[str]:
    """The commands the script invokes, in source order (the text of every command_name node)."""
    return [text(source, n) for n in walk(tree.root_node) if n.type == "command_name"]


def text(source: bytes, node: Node) -> str:
    """The source text of a node."""
    return source[node.start_byte:node.end_byte].decode()


def unquote(literal: str) -> str:
    """The value of a single-quoted PowerShell literal (two consecutive single quotes of any kind: one)."""
    if len(literal) < 2 or literal[0] not in PS_SINGLE_QUOTES or literal[-1] not in PS_SINGLE_QUOTES:
        raise UnknownConstruct(f"not a single-quoted literal: {literal[:60]!r}")
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        out.append(body[i])
        i += 2 if body[i] in PS_SINGLE_QUOTES and i + 1 < len(body) and body[i + 1] in PS_SINGLE_QUOTES else 1
    return "".join(out)


# -- values ---------------------------------------------------------------------------------------------

class PSChar(str):
    """A [char]: `+` on two of them adds numbers in PowerShell, so it is kept apart from a string."""


class Hashtable(dict):
    """A PowerShell hashtable or a Graph object: keys compare case-insensitively, as member access does."""

    def get_member(self, name: str):
        """The value of key / property `name` (case-insensitive; $null when absent, as PowerShell answers)."""
        for key, value in self.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Stream:
    """What a command wrote to the pipeline."""

    items: list = field(default_factory=list)

    def value(self):
        """The value an assignment takes: $null for nothing, the object for one, an array for more."""
        if not self.items:
            return None
        return self.items[0] if len(self.items) == 1 else list(self.items)


def truthy(value) -> bool:
    """PowerShell's conversion to bool."""
    if isinstance(value, Stream):
        value = value.value()
    if isinstance(value, list):
        return len(value) > 1 or (len(value) == 1 and truthy(value[0]))
    if isinstance(value, (Hashtable, bytes, datetime)):
        return True
    return bool(value)


def as_value(value):
    """A command's output as the value it is in an expression."""
    return value.value() if isinstance(value, Stream) else value


# -- the evaluator --------------------------------------------------------------------------------------

# Nodes that are only a precedence level: with one child they are that child.
_LEVELS = {"pipeline", "pipeline_chain", "logical_expression", "bitwise_expression", "comparison_expression",
           "additive_expression", "multiplicative_expression", "format_expression", "range_expression",
           "array_literal_expression", "unary_expression", "left_assignment_expression", "argument_expression",
           "logical_argument_expression", "bitwise_argument_expression", "comparison_argument_expression",
           "additive_argument_expression", "multiplicative_argument_expression", "format_argument_expression",
           "range_argument_expression", "key_expression", "member_name", "integer_literal", "string_literal"}
_COMMAND_NAME = re.compile(r"[A-Za-z]+-[A-Za-z]+")
# Switch parameters of the cmdlets the script uses (they take no argument).
SWITCHES = {"all", "nowelcome", "listavailable"}


def _children(node: Node) -> list[Node]:
    """A node's children without comments (tree-sitter puts them anywhere as extras)."""
    return [c for c in node.children if c.type != "comment"]


class Interpreter:
    """Runs a parsed script: `commands` maps a lower-case command name to a function(params, positional)
    returning the objects the command writes to the pipeline."""

    def __init__(self, script: str | bytes, commands: dict[str, Callable[[dict, list], list]]) -> None:
        self.tree, self.source = parse(script)
        errors = syntax_errors(self.tree, self.source)
        if errors:
            raise UnknownConstruct(f"the script does not parse: {errors[:5]}")
        self.commands = commands
        self.variables: dict[str, object] = {}

    def run(self) -> int:
        """Run the script; its exit code (0 unless `exit N` ran)."""
        try:
            self.block(self.tree.root_node, [])
        except ScriptExit as done:
            return done.code
        return 0

    def fail(self, node: Node, what: str = "construct") -> UnknownConstruct:
        return UnknownConstruct(f"unknown {what} {node.type!r} at byte {node.start_byte}: "
                                f"{text(self.source, node)[:80]!r}")

    # -- statements -------------------------------------------------------------------------------------
    def block(self, node: Node, output: list) -> None:
        """Run the statements of a program, statement_list or statement_block."""
        for child in _children(node):
            if child.type in ("statement_list", "statement_block"):
                self.block(child, output)
            elif child.type in ("{", "}"):
                continue
            else:
                self.statement(child, output)

    def statement(self, node: Node, output: list) -> None:
        kind = node.type
        if kind == "if_statement":
            return self.if_statement(node, output)
        if kind == "foreach_statement":
            return self.foreach_statement(node, output)
        if kind == "flow_control_statement":
            keyword, *rest = _children(node)
            argument = as_value(self.expression(rest[0])) if rest else None
            if keyword.type == "exit":
                raise ScriptExit(int(argument or 0))
            if keyword.type == "throw":
                raise ScriptThrow(str(argument))
            raise self.fail(node, "flow control")
        if kind == "pipeline":
            parts = _children(node)
            if len(parts) == 1 and parts[0].type == "assignment_expression":
                return self.assignment(parts[0])
        result = self.expression(node)
        if isinstance(result, Stream):
            output.extend(result.items)
        elif isinstance(result, list):  # an array written to the pipeline is enumerated
            output.extend(result)
        elif result is not None:
            output.append(result)
        return None

    def assignment(self, node: Node) -> None:
        target, operator, value = _children(node)
        if text(self.source, operator) != "=":
            raise self.fail(operator, "assignment operator")
        variable = self.descend(target)
        if variable.type != "variable":
            raise self.fail(target, "assignment target")
        result = as_value(self.expression(value))
        name = text(self.source, variable)[1:].lower()
        if name != "null":
            self.variables[name] = result

    def if_statement(self, node: Node, output: list) -> None:
        parts = _children(node)
        if [p.type for p in parts[:5]] != ["if", "(", "pipeline", ")", "statement_block"]:
            raise self.fail(node, "if statement")
        rest = parts[5:]
        if truthy(self.expression(parts[2])):
            return self.block(parts[4], output)
        for clause in rest:
            if clause.type != "else_clause":
                raise self.fail(clause, "if clause")
            _keyword, body = _children(clause)
            return self.block(body, output)
        return None

    def foreach_statement(self, node: Node, output: list) -> None:
        parts = _children(node)
        if [p.type for p in parts] != ["foreach", "(", "variable", "in", "pipeline", ")", "statement_block"]:
            raise self.fail(node, "foreach statement")
        items = as_value(self.expression(parts[4]))
        name = text(self.source, parts[2])[1:].lower()
        for item in ([] if items is None else items if isinstance(items, list) else [items]):
            self.variables[name] = item
            self.block(parts[6], output)

    # -- expressions ------------------------------------------------------------------------------------
    def descend(self, node: Node) -> Node:
        """The node below a chain of one-child precedence levels."""
        while node.type in _LEVELS and len(_children(node)) == 1:
            node = _children(node)[0]
        return node

    def expression(self, node: Node):
        node = self.descend(node)
        kind, parts = node.type, _children(node)
        if kind == "verbatim_string_characters":
            return unquote(text(self.source, node))
        if kind in ("decimal_integer_literal", "hexadecimal_integer_literal"):
            return int(text(self.source, node), 0)
        if kind == "variable":
            return self.variable(node)
        if kind == "command":
            return self.command(node)
        if kind == "parenthesized_expression":
            return as_value(self.expression(parts[1]))
        if kind == "array_expression":
            items: list = []
            if len(parts) == 3:
                self.block(parts[1], items)
            return items
        if kind == "array_literal_expression":
            return [as_value(self.expression(p)) for p in parts if p.type != ","]
        if kind == "hash_literal_expression":
            return self.hashtable(node)
        if kind == "member_access" and len(parts) == 3 and parts[1].type == ".":
            return self.member(as_value(self.expression(parts[0])), text(self.source, self.descend(parts[2])))
        if kind == "expression_with_unary_operator":
            return self.unary(node, parts)
        if kind == "cast_expression":
            return self.cast(text(self.source, parts[0]), as_value(self.expression(parts[1])), node)
        if kind == "invokation_expression":
            return self.invocation(node, parts)
        if len(parts) == 3 and kind in ("additive_expression", "comparison_expression", "logical_expression"):
            return self.binary(node, parts)
        raise self.fail(node)

    def variable(self, node: Node):
        name = text(self.source, node)
        if not re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", name):
            raise self.fail(node, "variable")
        name = name[1:].lower()
        constants = {"true": True, "false": False, "null": None}
        if name in constants:
            return constants[name]
        if name not in self.variables:
            raise UnknownConstruct(f"${name} is read before it is assigned (byte {node.start_byte})")
        return self.variables[name]

    def member(self, value, name: str):
        if value is None:
            return None
        if isinstance(value, Hashtable):
            return value.get_member(name)
        raise UnknownConstruct(f"member {name!r} of a {type(value).__name__}")

    def hashtable(self, node: Node) -> Hashtable:
        table = Hashtable()
        for body in _children(node):
            if body.type in ("@{", "}"):
                continue
            if body.type != "hash_literal_body":
                raise self.fail(body, "hashtable part")
            for entry in _children(body):
                if entry.type == ";":
                    continue
                key, equals, value = [c for c in _children(entry) if c.type != ";"]
                key = self.descend(key)
                if entry.type != "hash_entry" or equals.type != "=" or key.type != "simple_name":
                    raise self.fail(entry, "hash entry")
                table[text(self.source, key)] = as_value(self.expression(value))
        return table

    def unary(self, node: Node, parts: list[Node]):
        if len(parts) == 1:
            return self.expression(parts[0])
        operator, operand = parts
        if operator.type == "-not":
            return not truthy(self.expression(operand))
        raise self.fail(node, "unary operator")

    def cast(self, type_name: str, value, node: Node):
        kind = type_name.strip("[]").lower()
        if kind == "char" and isinstance(value, int) and 0 <= value <= 0xFFFF:
            return PSChar(chr(value))
        if kind == "datetime" and isinstance(value, str):
            # PowerShell converts a string cast to [datetime] with the invariant culture; ISO 8601 with Z is UTC.
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        raise self.fail(node, f"cast to {type_name}")

    def invocation(self, node: Node, parts: list[Node]):
        names = [text(self.source, p) for p in parts[:3]]
        if names[0].lower() == "[convert]" and names[1] == "::" and names[2].lower() == "tobase64string":
            value = self.single_argument(node, parts)
            if not isinstance(value, bytes):
                raise UnknownConstruct(f"ToBase64String of a {type(value).__name__} at byte {node.start_byte}")
            return base64.b64encode(value).decode()
        if names[0].lower() == "[convert]" and names[1] == "::" and names[2].lower() == "frombase64string":
            value = self.single_argument(node, parts)
            if not isinstance(value, str):
                raise UnknownConstruct(f"FromBase64String of a {type(value).__name__} at byte {node.start_byte}")
            try:  # Convert.FromBase64String skips white space, refuses anything else outside the alphabet
                return base64.b64decode(re.sub(r"\s", "", value), validate=True)
            except (binascii.Error, TypeError) as error:
                raise ScriptThrow(f"FromBase64String: {error}") from None
        raise self.fail(node, "method call")

    def single_argument(self, node: Node, parts: list[Node]):
        """The value of the one argument of a static method call."""
        lists = [p for p in _children(parts[3]) if p.type == "argument_expression_list"] if len(parts) == 4 else []
        arguments = [a for a in _children(lists[0]) if a.type != ","] if len(lists) == 1 else []
        if len(arguments) != 1:
            raise self.fail(node, "method call (one argument)")
        return as_value(self.expression(arguments[0]))

    def binary(self, node: Node, parts: list[Node]):
        left, operator, right = parts
        op = text(self.source, operator).lower()
        if op == "-and":
            return truthy(self.expression(left)) and truthy(self.expression(right))
        a, b = as_value(self.expression(left)), as_value(self.expression(right))
        if op == "+":
            if isinstance(a, PSChar) and isinstance(b, PSChar):
                return ord(a) + ord(b)  # PowerShell adds two [char] as numbers
            if isinstance(a, list):
                return a + (b if isinstance(b, list) else [b])  # array + x: a new array
            if isinstance(a, str) and (b is None or isinstance(b, (str, int))):
                return str(a) + ("" if b is None else str(b))
            raise UnknownConstruct(f"{type(a).__name__} + {type(b).__name__} at byte {node.start_byte}")
        if op == "-eq":
            if isinstance(a, str) and isinstance(b, str):
                return a.lower() == b.lower()  # -eq compares strings case-insensitively
            if isinstance(a, (list, Hashtable)):
                raise UnknownConstruct(f"-eq on a {type(a).__name__} at byte {node.start_byte}")
            return a == b
        raise self.fail(operator, "operator")

    # -- commands ---------------------------------------------------------------------------------------
    def command(self, node: Node) -> Stream:
        parts = _children(node)
        name = text(self.source, parts[0])
        if parts[0].type != "command_name" or not _COMMAND_NAME.fullmatch(name):
            raise self.fail(node, "command form")
        params: dict[str, object] = {}
        positional: list = []
        elements = [e for e in (_children(parts[1]) if len(parts) > 1 else []) if e.type != "command_argument_sep"]
        pending: str | None = None
        for element in elements:
            if element.type == "command_parameter":
                if pending is not None:
                    params[pending] = True
                pending = text(self.source, element)[1:].lower()  # parameter names are case-insensitive
                if not re.fullmatch(r"[a-z]+", pending):
                    raise self.fail(element, "parameter")
                if pending in SWITCHES:
                    params[pending], pending = True, None
                continue
            value = as_value(self.expression(element))
            if pending is None:
                positional.append(value)
            else:
                params[pending], pending = value, None
        if pending is not None:
            params[pending] = True
        handler = self.commands.get(name.lower())
        if handler is None:
            raise UnknownCmdlet(f"the script invokes {name}, which the admin's mapping doesn't know")
        return Stream(list(handler(params, positional)))


def evaluate_assignments(script: str | bytes) -> dict[str, object]:
    """The values of the script's top-level assignments that run no command (the lower-case variable name →
    its value), evaluated from the parse tree."""
    interpreter = Interpreter(script, {})
    root = interpreter.tree.root_node
    statements = [s for c in _children(root) for s in (_children(c) if c.type == "statement_list" else [c])]
    for statement in statements:
        parts = _children(statement)
        if statement.type == "pipeline" and len(parts) == 1 and parts[0].type == "assignment_expression":
            try:
                interpreter.assignment(parts[0])
            except (UnknownCmdlet, UnknownConstruct, ScriptThrow):
                continue
    return dict(interpreter.variables)


# -- the Graph mapping ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GraphCmdlet:
    """A Microsoft Graph PowerShell cmdlet and the REST call its documentation names."""

    method: str
    path: str  # {Parameter} placeholders are path parameters
    doc: str  # the cmdlet's page (learn.microsoft.com/powershell/module/...)
    rest: str  # the Graph API page of the call it makes
    body: tuple[str, ...] = ()  # parameters sent as properties of the request body
    listing: bool = False  # answers a collection (-Filter → $filter, -All follows @odata.nextLink)
    item: str | None = None  # with this path parameter the cmdlet gets one object: path + /{parameter}
    outputs: bool = True  # Update-* cmdlets write nothing (Graph answers 204)


GRAPH_CMDLETS: dict[str, GraphCmdlet] = {name.lower(): cmdlet for name, cmdlet in {
    "Get-MgApplication": GraphCmdlet(  # -ApplicationId: application-get
        "GET", "/applications", f"{MODULE_DOCS}/microsoft.graph.applications/get-mgapplication",
        f"{GRAPH_DOCS}/application-list", listing=True, item="ApplicationId"),
    "Update-MgApplication": GraphCmdlet(
        "PATCH", "/applications/{ApplicationId}", f"{MODULE_DOCS}/microsoft.graph.applications/update-mgapplication",
        f"{GRAPH_DOCS}/application-update", body=("DisplayName", "RequiredResourceAccess", "KeyCredentials"),
        outputs=False),
    "New-MgApplication": GraphCmdlet(
        "POST", "/applications", f"{MODULE_DOCS}/microsoft.graph.applications/new-mgapplication",
        f"{GRAPH_DOCS}/application-post-applications",
        body=("UniqueName", "DisplayName", "SignInAudience", "RequiredResourceAccess", "KeyCredentials")),
    "Get-MgServicePrincipal": GraphCmdlet(
        "GET", "/servicePrincipals", f"{MODULE_DOCS}/microsoft.graph.applications/get-mgserviceprincipal",
        f"{GRAPH_DOCS}/serviceprincipal-list", listing=True),
    "New-MgServicePrincipal": GraphCmdlet(
        "POST", "/servicePrincipals", f"{MODULE_DOCS}/microsoft.graph.applications/new-mgserviceprincipal",
        f"{GRAPH_DOCS}/serviceprincipal-post-serviceprincipals", body=("AppId",)),
    "Get-MgServicePrincipalAppRoleAssignment": GraphCmdlet(
        "GET", "/servicePrincipals/{ServicePrincipalId}/appRoleAssignments",
        f"{MODULE_DOCS}/microsoft.graph.applications/get-mgserviceprincipalapproleassignment",
        f"{GRAPH_DOCS}/serviceprincipal-list-approleassignments", listing=True),
    "New-MgServicePrincipalAppRoleAssignment": GraphCmdlet(
        "POST", "/servicePrincipals/{ServicePrincipalId}/appRoleAssignments",
        f"{MODULE_DOCS}/microsoft.graph.applications/new-mgserviceprincipalapproleassignment",
        f"{GRAPH_DOCS}/serviceprincipal-post-approleassignments", body=("PrincipalId", "ResourceId", "AppRoleId")),
    "New-MgServicePrincipalAppRoleAssignedTo": GraphCmdlet(
        "POST", "/servicePrincipals/{ServicePrincipalId}/appRoleAssignedTo",
        f"{MODULE_DOCS}/microsoft.graph.applications/new-mgserviceprincipalapproleassignedto",
        f"{GRAPH_DOCS}/serviceprincipal-post-approleassignedto", body=("PrincipalId", "ResourceId", "AppRoleId")),
    "Get-MgRoleManagementDirectoryRoleAssignment": GraphCmdlet(
        "GET", "/roleManagement/directory/roleAssignments",
        f"{MODULE_DOCS}/microsoft.graph.identity.governance/get-mgrolemanagementdirectoryroleassignment",
        f"{GRAPH_DOCS}/rbacapplication-list-roleassignments", listing=True),
    "New-MgRoleManagementDirectoryRoleAssignment": GraphCmdlet(
        "POST", "/roleManagement/directory/roleAssignments",
        f"{MODULE_DOCS}/microsoft.graph.identity.governance/new-mgrolemanagementdirectoryroleassignment",
        f"{GRAPH_DOCS}/rbacapplication-post-roleassignments",
        body=("PrincipalId", "RoleDefinitionId", "DirectoryScopeId")),
    # The removal script (offboarding of a manual onboarding): each Remove-* cmdlet is the DELETE its page names
    # (Graph answers 204; the cmdlet writes nothing).
    "Remove-MgRoleManagementDirectoryRoleAssignment": GraphCmdlet(
        "DELETE", "/roleManagement/directory/roleAssignments/{UnifiedRoleAssignmentId}",
        f"{MODULE_DOCS}/microsoft.graph.identity.governance/remove-mgrolemanagementdirectoryroleassignment",
        f"{GRAPH_DOCS}/unifiedroleassignment-delete", outputs=False),
    "Remove-MgServicePrincipalAppRoleAssignment": GraphCmdlet(
        "DELETE", "/servicePrincipals/{ServicePrincipalId}/appRoleAssignments/{AppRoleAssignmentId}",
        f"{MODULE_DOCS}/microsoft.graph.applications/remove-mgserviceprincipalapproleassignment",
        f"{GRAPH_DOCS}/serviceprincipal-delete-approleassignments", outputs=False),
    "Remove-MgServicePrincipal": GraphCmdlet(
        "DELETE", "/servicePrincipals/{ServicePrincipalId}",
        f"{MODULE_DOCS}/microsoft.graph.applications/remove-mgserviceprincipal",
        f"{GRAPH_DOCS}/serviceprincipal-delete", outputs=False),
    "Remove-MgApplication": GraphCmdlet(
        "DELETE", "/applications/{ApplicationId}", f"{MODULE_DOCS}/microsoft.graph.applications/remove-mgapplication",
        f"{GRAPH_DOCS}/application-delete", outputs=False),
    "Get-MgDirectoryDeletedItemAsApplication": GraphCmdlet(
        "GET", "/directory/deletedItems/microsoft.graph.application",
        f"{MODULE_DOCS}/microsoft.graph.identity.directorymanagement/get-mgdirectorydeleteditemasapplication",
        f"{GRAPH_DOCS}/directory-deleteditems-list", listing=True),
    "Get-MgDirectoryDeletedItemAsServicePrincipal": GraphCmdlet(
        "GET", "/directory/deletedItems/microsoft.graph.servicePrincipal",
        f"{MODULE_DOCS}/microsoft.graph.identity.directorymanagement/get-mgdirectorydeleteditemasserviceprincipal",
        f"{GRAPH_DOCS}/directory-deleteditems-list", listing=True),
    "Remove-MgDirectoryDeletedItem": GraphCmdlet(
        "DELETE", "/directory/deletedItems/{DirectoryObjectId}",
        f"{MODULE_DOCS}/microsoft.graph.identity.directorymanagement/remove-mgdirectorydeleteditem",
        f"{GRAPH_DOCS}/directory-deleteditems-delete", outputs=False),
}.items()}
CONNECT_DOC = f"{MODULE_DOCS}/microsoft.graph.authentication/connect-mggraph"


def to_json(value):
    """A parameter value as the SDK serialises it: hashtable keys in camelCase, byte[] as base64, DateTime
    in ISO 8601."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    raise UnknownConstruct(f"a {type(value).__name__} in a request body")


# Edm.Binary properties the script reads: the SDK's models hold them as byte[].
BINARY_PROPERTIES = {"key", "customkeyidentifier"}


def _hashtables(value):
    """Graph's JSON as PowerShell objects (case-insensitive members; Edm.Binary as bytes)."""
    if isinstance(value, dict):
        return Hashtable({key: base64.b64decode(item) if key.lower() in BINARY_PROPERTIES and isinstance(item, str)
                          else _hashtables(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_hashtables(item) for item in value]
    return value


@dataclass
class GraphCall:
    """One REST call the admin made for a cmdlet."""

    cmdlet: str
    method: str
    url: str
    body: dict | None
    status: int


class ScriptAdmin:
    """Runs a generated script's calls as the tenant's administrator.

    `connect(tenant_id, scopes)` stands for Connect-MgGraph's sign-in and returns an access token for Graph;
    the calls go to `graph_url` (e.g. the simulator's https://…/v1.0)."""

    def __init__(self, graph_url: str, connect: Callable[[str, list[str]], str], ca_bundle: str | None = None):
        import requests

        self.graph_url = graph_url.rstrip("/")
        self.connect = connect
        self.http = requests.Session()
        if ca_bundle:
            self.http.verify = ca_bundle
        self.token: str | None = None
        self.connected: tuple[str, list[str]] | None = None
        self.calls: list[GraphCall] = []
        self.host_output: list[str] = []
        self.exit_code: int | None = None

    def run(self, script: str | bytes) -> ScriptAdmin:
        """Interpret the whole script; its exit code is in `exit_code`, what it printed in `host_output`."""
        handlers: dict[str, Callable[[dict, list], list]] = {
            "write-host": self.write_host, "get-module": self.get_module, "connect-mggraph": self.connect_mggraph}
        for name, cmdlet in GRAPH_CMDLETS.items():
            handlers[name] = self._graph_handler(name, cmdlet)
        self.exit_code = Interpreter(script, handlers).run()
        return self

    def close(self) -> None:
        self.http.close()

    # -- the non-Graph commands -------------------------------------------------------------------------
    def write_host(self, params: dict, positional: list) -> list:
        if params:
            raise UnknownConstruct(f"Write-Host parameters {sorted(params)}")
        self.host_output.append(" ".join("" if p is None else str(p) for p in positional))
        return []

    def get_module(self, params: dict, positional: list) -> list:
        """Get-Module -ListAvailable -Name X: the administrator has the Microsoft Graph modules installed."""
        if set(params) != {"listavailable", "name"} or positional:
            raise UnknownConstruct(f"Get-Module with {sorted(params)} {positional}")
        return [Hashtable(Name=params["name"])]

    def connect_mggraph(self, params: dict, positional: list) -> list:
        """Connect-MgGraph -TenantId -Scopes [-NoWelcome] (CONNECT_DOC): the admin signs in with those scopes."""
        if positional or not {"tenantid", "scopes"} <= set(params) <= {"tenantid", "scopes", "nowelcome"}:
            raise UnknownConstruct(f"Connect-MgGraph with {sorted(params)} {positional}")
        scopes = params["scopes"] if isinstance(params["scopes"], list) else [params["scopes"]]
        self.connected = (params["tenantid"], list(scopes))
        self.token = self.connect(params["tenantid"], list(scopes))
        return []

    # -- Graph ------------------------------------------------------------------------------------------
    def _graph_handler(self, name: str, cmdlet: GraphCmdlet) -> Callable[[dict, list], list]:
        def handler(params: dict, positional: list) -> list:
            return self.graph(name, cmdlet, params, positional)
        return handler

    def graph(self, name: str, cmdlet: GraphCmdlet, params: dict, positional: list) -> list:
        """Perform the cmdlet's REST call with the script's parameters; the objects the cmdlet would output."""
        if self.token is None:
            raise ScriptThrow(f"{name}: Authentication needed. Please call Connect-MgGraph.")
        if positional:
            raise UnknownConstruct(f"{name} with positional arguments {positional}")
        remaining = dict(params)
        path = cmdlet.path
        single = cmdlet.item is not None and cmdlet.item.lower() in remaining
        if single:
            path = f"{path}/{{{cmdlet.item}}}"
        for placeholder in re.findall(r"\{(\w+)\}", path):
            value = remaining.pop(placeholder.lower(), None)
            if not isinstance(value, str) or not value:
                raise ScriptThrow(f"{name}: -{placeholder} is required")
            path = path.replace("{" + placeholder + "}", value)
        query: dict[str, str] = {}
        follow = False
        if cmdlet.method == "GET" and "property" in remaining:  # -Property → $select
            selected = remaining.pop("property")
            query["$select"] = ",".join(selected if isinstance(selected, list) else [selected])
        if cmdlet.listing and not single:
            if "filter" in remaining:
                query["$filter"] = str(remaining.pop("filter"))
            follow = remaining.pop("all", False) is True
        body = {key[:1].lower() + key[1:]: to_json(remaining.pop(key.lower())) for key in cmdlet.body
                if key.lower() in remaining}
        if remaining:
            raise UnknownConstruct(f"{name} parameters {sorted(remaining)} are not mapped ({cmdlet.doc})")
        url = self.graph_url + path
        if cmdlet.method == "GET":
            if cmdlet.listing and not single:
                return self._list(name, url, query, follow)
            return [self._send(name, "GET", url, params=query)]
        result = self._send(name, cmdlet.method, url, body=body)
        return [result] if cmdlet.outputs else []

    def _list(self, name: str, url: str, query: dict, follow: bool) -> list:
        """A collection's items: the first page, or every page with -All (the cmdlet follows @odata.nextLink)."""
        page = self._send(name, "GET", url, params=query)
        items = list(page.get_member("value") or [])
        while follow and page.get_member("@odata.nextLink"):
            page = self._send(name, "GET", page.get_member("@odata.nextLink"))
            items.extend(page.get_member("value") or [])
        return items

    def _send(self, name: str, method: str, url: str, params: dict | None = None, body: dict | None = None):
        # A DELETE sends no body (the Remove-* cmdlets take only path parameters).
        response = self.http.request(method, url, params=params, json=None if method == "DELETE" else body,
                                     headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
        self.calls.append(GraphCall(name, method, response.url, body, response.status_code))
        if response.status_code >= 400:
            # $ErrorActionPreference = 'Stop': a cmdlet's error ends the script.
            raise ScriptThrow(f"{name}: {response.status_code} {response.text[:500]}")
        return _hashtables(response.json()) if response.content else Hashtable()

    def writes(self) -> list[GraphCall]:
        """The calls that changed something."""
        return [call for call in self.calls if call.method != "GET"]
