"""A small interpreter of Logic Apps workflow definitions, for the samples in infra/logic-apps/.

It runs what the samples use, the way Azure Logic Apps documents it, and refuses anything else (an unknown action
type, expression function or runAfter status is an error, so a sample cannot use something untested):

- expressions (logic-apps-workflow-definition-language.md, "Expressions", "Operators"): a JSON string starting
  with ``@`` is one expression and keeps its type; ``@{...}`` interpolates into a string; ``@@`` escapes; ``'...'``
  string literals (``''`` escapes a quote); ``.name``, ``['name']``, ``[0]`` and the null-safe ``?``;
- actions (logic-apps-workflow-actions-triggers.md): Http, Compose, If (object or string conditions), Foreach
  (sequential), Terminate, ApiConnection (answered by a fake connector the test supplies); ``runAfter`` with
  Succeeded / Failed / Skipped / TimedOut; an action whose predecessors ended otherwise is Skipped;
- the HTTP action's asynchronous pattern (connectors/connectors-native-http.md, "Asynchronous request-response
  behavior"): a 202 with ``Location`` is polled until a non-202 answer, waiting ``Retry-After`` seconds (20 when
  absent) on the clock the caller supplies (the sandbox clock: nothing sleeps); ``limit.timeout`` (ISO 8601) bounds
  the whole wait ("Change asynchronous duration"), after which the action is TimedOut; a final 2xx is Succeeded,
  anything else Failed. The harness does not implement retry policies (the samples' failures are 4xx answers or
  terminal bodies, which Logic Apps does not retry).

`check_definition` checks the fields the Workflow Definition Language requires (the published JSON schema,
schema.management.azure.com/.../2016-06-01/workflowdefinition.json, is not available offline).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests

WDL_SCHEMA = "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#"
RUN_AFTER_STATUSES = ("Succeeded", "Failed", "Skipped", "TimedOut")
PARAMETER_TYPES = ("array", "bool", "float", "int", "object", "secureobject", "securestring", "string")
HTTP_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
# Limits (logic-apps-limits-and-config.md, "Definition limits").
MAX_ACTIONS, MAX_TRIGGERS, MAX_PARAMETERS, MAX_NAME, MAX_EXPRESSION = 500, 10, 50, 80, 8192
DEFAULT_RETRY_AFTER = 20
ISO_DURATION = re.compile(r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
                          r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")


def iso_duration(text: str) -> timedelta:
    """An ISO 8601 duration of days, hours, minutes and seconds (P7DT1H, PT30S)."""
    match = ISO_DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration of days and time: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


class ExpressionError(ValueError):
    """An expression the interpreter cannot parse or evaluate."""


# -- expressions ---------------------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                   r"|(?P<punct>\?\.|\?\[|[()\[\],.?]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"cannot read {text[position:]!r} in {text!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


@dataclass
class Node:
    kind: str  # call | literal | member
    value: Any = None
    args: list = field(default_factory=list)
    target: Any = None
    safe: bool = False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else (None, None)

    def take(self, value: str | None = None):
        token = self.peek()
        if token[0] is None or (value is not None and token[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in {self.text!r}")
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.expression()
        if self.at != len(self.tokens):
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return node

    def expression(self) -> Node:
        kind, value = self.take()
        if kind == "string":
            node = Node("literal", value[1:-1].replace("''", "'"))
        elif kind == "number":
            node = Node("literal", float(value) if "." in value else int(value))
        elif kind == "name" and value in ("true", "false", "null"):
            node = Node("literal", {"true": True, "false": False, "null": None}[value])
        elif kind == "name":
            self.take("(")
            args = []
            if self.peek()[1] != ")":
                args.append(self.expression())
                while self.peek()[1] == ",":
                    self.take(",")
                    args.append(self.expression())
            self.take(")")
            node = Node("call", value, args)
        else:
            raise ExpressionError(f"unexpected {value!r} in {self.text!r}")
        while self.peek()[1] in (".", "?.", "[", "?[", "?"):
            token = self.take()[1]
            safe = token.startswith("?")
            if token == "?":  # `?` before `.` or `[` written apart
                token = self.take()[1]
                safe = True
            if token.endswith("["):
                key = self.expression()
                self.take("]")
            else:
                key = Node("literal", self.take()[1])
            node = Node("member", target=node, args=[key], safe=safe)
        return node


class Functions:
    """The expression functions the samples use (workflow-definition-language-functions-reference.md)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def call(self, name: str, args: list):
        handler = getattr(self, f"f_{name.lower()}", None)
        if handler is None:
            raise ExpressionError(f"the harness does not implement {name}()")
        return handler(*args)

    def f_parameters(self, name):
        if name not in self.run.parameters:
            raise ExpressionError(f"parameter {name!r} is not declared")
        return self.run.parameters[name]

    def f_triggerbody(self):
        return self.run.trigger_body

    def f_trigger(self):
        return {"outputs": {"body": self.run.trigger_body, "headers": {}}}

    def f_workflow(self):
        return {"name": self.run.name, "run": {"name": self.run.id}}

    def _action(self, name):
        if name not in self.run.results:
            raise ExpressionError(f"action {name!r} has not run")
        return self.run.results[name]

    def f_body(self, name):
        return (self._action(name).get("outputs") or {}).get("body")

    def f_outputs(self, name):
        return self._action(name).get("outputs")

    def f_actions(self, name):
        return self._action(name)

    def f_items(self, name):
        if name not in self.run.loop_items:
            raise ExpressionError(f"items({name!r}) outside that loop")
        return self.run.loop_items[name]

    def f_coalesce(self, *values):
        return next((v for v in values if v is not None), None)

    def f_concat(self, *values):
        return "".join(to_text(v) for v in values)

    def f_string(self, value):
        return to_text(value)

    def f_equals(self, a, b):
        return a == b

    def f_and(self, *values):
        return all(values)

    def f_or(self, *values):
        return any(values)

    def f_not(self, value):
        return not value

    def f_if(self, condition, yes, no):
        return yes if condition else no

    def f_createarray(self, *values):
        return list(values)

    def f_encodeuricomponent(self, value):
        return urllib.parse.quote(to_text(value), safe="")

    def f_empty(self, value):
        return not value


def to_text(value) -> str:
    """A value in a string (interpolation, string()): text as it is, null as nothing, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _member(value, key, safe: bool):
    if value is None:
        if safe:
            return None
        raise ExpressionError(f"cannot read {key!r} of null (use ?)")
    if isinstance(value, dict):
        if key not in value and not safe:
            raise ExpressionError(f"no property {key!r}")
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    if safe:
        return None
    raise ExpressionError(f"cannot read {key!r} of {type(value).__name__}")


def evaluate_node(node: Node, functions: Functions):
    if node.kind == "literal":
        return node.value
    if node.kind == "call":
        return functions.call(node.value, [evaluate_node(a, functions) for a in node.args])
    return _member(evaluate_node(node.target, functions), evaluate_node(node.args[0], functions), node.safe)


def expressions_in(text: str) -> list[str]:
    """The expressions a JSON string holds (none for a plain string)."""
    if not isinstance(text, str) or "@" not in text:
        return []
    if text.startswith("@") and not text.startswith("@@") and not text.startswith("@{"):
        return [text[1:]]
    found, position = [], 0
    while (start := text.find("@{", position)) >= 0:
        if start > 0 and text[start - 1] == "@":
            position = start + 2
            continue
        end = _closing(text, start + 2)
        found.append(text[start + 2:end])
        position = end + 1
    return found


def _closing(text: str, position: int) -> int:
    depth, quoted = 0, False
    for index in range(position, len(text)):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and char == "}" and depth == 0:
            return index
    raise ExpressionError(f"no closing }} in {text!r}")


def parse(expression: str) -> Node:
    if len(expression) > MAX_EXPRESSION:
        raise ExpressionError("longer than the 8,192 characters an expression may have")
    return _Parser(expression).parse()


def evaluate_value(value, functions: Functions):
    """A JSON value with its expressions evaluated (deeply)."""
    if isinstance(value, dict):
        return {k: evaluate_value(v, functions) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate_value(v, functions) for v in value]
    if not isinstance(value, str) or "@" not in value:
        return value
    if value.startswith("@@"):
        return value[1:]
    if value.startswith("@") and not value.startswith("@{"):
        return evaluate_node(parse(value[1:]), functions)
    out, position = [], 0
    while (start := value.find("@{", position)) >= 0:
        out.append(value[position:start])
        end = _closing(value, start + 2)
        out.append(to_text(evaluate_node(parse(value[start + 2:end]), functions)))
        position = end + 1
    out.append(value[position:])
    return "".join(out).replace("@@", "@")


def condition(expression, functions: Functions) -> bool:
    """An If action's expression: an expression string, or the designer's object form (and / or / not / equals /
    greater / less / contains)."""
    if isinstance(expression, str):
        return bool(evaluate_value(expression, functions))
    if not isinstance(expression, dict) or len(expression) != 1:
        raise ExpressionError(f"not a condition: {expression!r}")
    (operator, operands), = expression.items()
    if operator == "and":
        return all(condition(item, functions) for item in operands)
    if operator == "or":
        return any(condition(item, functions) for item in operands)
    if operator == "not":
        return not condition(operands, functions)
    left, right = (evaluate_value(item, functions) for item in operands)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "equals": lambda a, b: a == b, "greater": lambda a, b: a > b, "less": lambda a, b: a < b,
        "contains": lambda a, b: b in a}
    if operator not in comparisons:
        raise ExpressionError(f"the harness does not implement the condition {operator!r}")
    return comparisons[operator](left, right)


# -- the fields the language requires ------------------------------------------------------------------------

def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def check_definition(document: dict) -> list[str]:
    """What breaks the Workflow Definition Language's required fields and documented limits (empty: nothing).

    From logic-apps-workflow-definition-language.md (definition, $schema, contentVersion, parameters with a type,
    limits) and logic-apps-workflow-actions-triggers.md (each trigger's and action's required inputs, runAfter)."""
    problems: list[str] = []
    definition = document.get("definition")
    if not isinstance(definition, dict):
        return ["no definition object"]
    if definition.get("$schema") != WDL_SCHEMA:
        problems.append(f"$schema is not {WDL_SCHEMA}")
    if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", str(definition.get("contentVersion", "1.0.0.0"))):
        problems.append("contentVersion is not n.n.n.n")
    parameters = definition.get("parameters") or {}
    if len(parameters) > MAX_PARAMETERS:
        problems.append("more than 50 parameters")
    for name, parameter in parameters.items():
        if str(parameter.get("type", "")).lower() not in PARAMETER_TYPES:
            problems.append(f"parameter {name}: type {parameter.get('type')!r}")
    triggers = definition.get("triggers") or {}
    if not 1 <= len(triggers) <= MAX_TRIGGERS:
        problems.append("a workflow needs 1 to 10 triggers")
    for name, trigger in triggers.items():
        problems += _check_named(name, trigger, "trigger")
        if trigger.get("type") == "Request":
            inputs = trigger.get("inputs") or {}
            if trigger.get("kind") != "Http":
                problems.append(f"trigger {name}: a Request trigger of kind Http")
            if not isinstance(inputs.get("schema"), dict):
                problems.append(f"trigger {name}: no schema")
            if inputs.get("method") and inputs["method"] not in HTTP_METHODS:
                problems.append(f"trigger {name}: method {inputs['method']!r}")
        elif trigger.get("type") is not None:
            problems.append(f"trigger {name}: the harness knows only Request triggers")
    counted = [0]
    problems += _check_actions(definition.get("actions") or {}, counted)
    if counted[0] > MAX_ACTIONS:
        problems.append("more than 500 actions")
    declared = set(parameters)
    for text in _strings(definition):
        for expression in expressions_in(text):
            try:
                node = parse(expression)
            except ExpressionError as error:
                problems.append(str(error))
                continue
            problems += [f"parameters({p!r}) is not declared" for p in _parameter_names(node) if p not in declared]
    return problems


def _parameter_names(node: Node) -> list[str]:
    names = []
    if node.kind == "call" and node.value == "parameters" and node.args and node.args[0].kind == "literal":
        names.append(node.args[0].value)
    for child in [*node.args, node.target]:
        if isinstance(child, Node):
            names += _parameter_names(child)
    return names


def _check_named(name: str, item: dict, what: str) -> list[str]:
    problems = []
    if len(name) > MAX_NAME:
        problems.append(f"{what} {name}: a name of at most 80 characters")
    if not isinstance(item, dict) or not item.get("type"):
        problems.append(f"{what} {name}: no type")
    if isinstance(item, dict) and len(item.get("description") or "") > 256:
        problems.append(f"{what} {name}: a description of at most 256 characters")
    return problems


def _check_actions(actions: dict, counted: list[int]) -> list[str]:
    problems = []
    for name, action in actions.items():
        counted[0] += 1
        problems += _check_named(name, action, "action")
        kind, inputs = action.get("type"), action.get("inputs")
        for before, statuses in (action.get("runAfter") or {}).items():
            if before not in actions:
                problems.append(f"action {name}: runAfter {before}, which is not in its scope")
            if not statuses or not set(statuses) <= set(RUN_AFTER_STATUSES):
                problems.append(f"action {name}: runAfter statuses {statuses}")
        if "runAfter" not in action:
            problems.append(f"action {name}: no runAfter")
        if "limit" in action:
            try:
                iso_duration(action["limit"].get("timeout"))
            except ValueError as error:
                problems.append(f"action {name}: limit.timeout: {error}")
        if kind == "Http":
            if not isinstance(inputs, dict) or inputs.get("method") not in HTTP_METHODS or not inputs.get("uri"):
                problems.append(f"action {name}: an Http action needs inputs.method and inputs.uri")
        elif kind == "Compose":
            if "inputs" not in action:
                problems.append(f"action {name}: a Compose action needs inputs")
        elif kind == "Terminate":
            if (inputs or {}).get("runStatus") not in ("Failed", "Cancelled", "Succeeded"):
                problems.append(f"action {name}: a Terminate action needs runStatus Failed, Cancelled or Succeeded")
        elif kind == "ApiConnection":
            host = (inputs or {}).get("host") or {}
            if not (host.get("connection") or {}).get("name") or not inputs.get("method") or not inputs.get("path"):
                problems.append(f"action {name}: an ApiConnection needs host.connection.name, method and path")
        elif kind == "If":
            if "expression" not in action or not isinstance(action.get("actions"), dict):
                problems.append(f"action {name}: an If needs expression and actions")
            problems += _check_actions(action.get("actions") or {}, counted)
            problems += _check_actions((action.get("else") or {}).get("actions") or {}, counted)
        elif kind == "Foreach":
            if not action.get("foreach") or not isinstance(action.get("actions"), dict):
                problems.append(f"action {name}: a Foreach needs foreach and actions")
            problems += _check_actions(action.get("actions") or {}, counted)
        else:
            problems.append(f"action {name}: the harness does not know type {kind!r}")
    return problems


# -- running ---------------------------------------------------------------------------------------------------

class Clock:
    """Where the HTTP action waits: the sandbox clock (advanced, never slept on)."""

    def __init__(self, advance: Callable[[float], object]) -> None:
        self._advance = advance
        self.waited: list[float] = []

    def wait(self, seconds: float) -> None:
        self.waited.append(seconds)
        self._advance(seconds)


@dataclass
class Run:
    definition: dict
    parameters: dict
    trigger_body: Any
    clock: Clock
    connectors: dict[str, Callable[[str, str, Any], dict]] = field(default_factory=dict)
    name: str = "workflow"
    poll_pause: float = 0.05
    id: str = field(default_factory=lambda: uuid.uuid4().hex.upper())
    results: dict[str, dict] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    loop_items: dict[str, Any] = field(default_factory=dict)
    status: str = "Running"
    error: dict | None = None
    polls: list[dict] = field(default_factory=list)

    def start(self) -> Run:
        definition = self.definition["definition"]
        declared = definition.get("parameters") or {}
        values = {name: p.get("defaultValue") for name, p in declared.items()}
        values.update({name: p.get("value") for name, p in (self.definition.get("parameters") or {}).items()})
        values.update(self.parameters)
        self.parameters = values
        status = self._scope(definition.get("actions") or {})
        if self.status == "Running":
            self.status = status
        return self

    def _scope(self, actions: dict) -> str:
        """Run the actions of one scope in runAfter order; the scope's status: Failed when one of its last actions
        (those no other action runs after) failed or timed out, as a run's status follows its last actions."""
        done: dict[str, str] = {}
        while len(done) < len(actions) and self.status == "Running":
            ready = [n for n, a in actions.items() if n not in done
                     and all(before in done for before in (a.get("runAfter") or {}))]
            if not ready:
                raise ExpressionError("runAfter has a cycle")
            for name in ready:
                action = actions[name]
                wanted = action.get("runAfter") or {}
                if all(done[before] in statuses for before, statuses in wanted.items()):
                    result = self._action(name, action)
                else:
                    result = {"status": "Skipped", "outputs": None}
                self.results[name] = result
                self.types[name] = action["type"]
                done[name] = result["status"]
                if self.status != "Running":
                    break
        consumed = {before for a in actions.values() for before in (a.get("runAfter") or {})}
        last = [done[n] for n in done if n not in consumed]
        return "Failed" if any(s in ("Failed", "TimedOut") for s in last) else "Succeeded"

    def _action(self, name: str, action: dict) -> dict:
        functions = Functions(self)
        kind = action["type"]
        if kind == "Compose":
            return {"status": "Succeeded", "outputs": evaluate_value(action["inputs"], functions)}
        if kind == "Http":
            return self._http(action, evaluate_value(action["inputs"], functions))
        if kind == "If":
            branch = "actions" if condition(action["expression"], functions) else "else"
            nested = action.get("actions") if branch == "actions" else (action.get("else") or {}).get("actions")
            other = (action.get("else") or {}).get("actions", {}) if branch == "actions" else action["actions"]
            self.results.update({skipped: {"status": "Skipped", "outputs": None} for skipped in other})
            status = self._scope(nested or {})
            return {"status": status, "outputs": {"expression": branch == "actions"}, "branch": branch}
        if kind == "Terminate":
            inputs = evaluate_value(action["inputs"], functions)
            self.status, self.error = inputs["runStatus"], inputs.get("runError")
            return {"status": "Succeeded", "outputs": None}
        if kind == "Foreach":
            items = evaluate_value(action["foreach"], functions)
            if not isinstance(items, list):
                return {"status": "Failed", "outputs": {"error": "foreach is not an array"}}
            statuses = []
            for item in items:
                self.loop_items[name] = item
                statuses.append(self._scope(action["actions"]))
            self.loop_items.pop(name, None)
            return {"status": "Failed" if "Failed" in statuses else "Succeeded", "outputs": {"count": len(items)}}
        if kind == "ApiConnection":
            inputs = evaluate_value(action["inputs"], functions)
            connector = self.connectors[inputs["host"]["connection"]["name"]]
            answer = connector(inputs["method"], inputs["path"], inputs.get("body"))
            ok = 200 <= answer["statusCode"] < 300
            return {"status": "Succeeded" if ok else "Failed", "outputs": answer}
        raise ExpressionError(f"the harness does not run {kind} actions")

    def _http(self, action: dict, inputs: dict) -> dict:
        timeout = iso_duration(action["limit"]["timeout"]).total_seconds() if "limit" in action else None
        waited = 0.0
        headers = inputs.get("headers") or {}
        body = inputs.get("body")
        data = json.dumps(body) if body is not None and not isinstance(body, str | bytes) else body
        response = requests.request(inputs["method"], inputs["uri"], headers=headers, data=data, timeout=60)
        asynchronous = "DisableAsyncPattern" not in (action.get("operationOptions") or "")
        while asynchronous and response.status_code == 202 and response.headers.get("Location"):
            seconds = int(response.headers.get("Retry-After") or DEFAULT_RETRY_AFTER)
            if timeout is not None and waited + seconds > timeout:
                self.clock.wait(timeout - waited)
                return {"status": "TimedOut", "outputs": _outputs(response), "code": "ActionTimedOut"}
            self.clock.wait(seconds)
            waited += seconds
            time.sleep(self.poll_pause)  # pacing the polls, as Product.finish does: no timer waits on it
            location = response.headers["Location"]
            response = requests.get(location, timeout=60)  # the poll sends nothing but the URL
            self.polls.append({"url": location, "status": response.status_code, "after": seconds})
        ok = 200 <= response.status_code < 300
        return {"status": "Succeeded" if ok else "Failed", "outputs": _outputs(response)}


def _outputs(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"statusCode": response.status_code, "headers": dict(response.headers), "body": body}


def load(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
