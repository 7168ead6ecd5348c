"""Load a Function App (``module:attribute``) through ``app.get_functions()`` and check it statically.

The checks are the ones the Functions host and the Python worker apply when they index an app
(plus a few the worker only reports at invocation time): routes, NCRONTAB schedules, unique names,
binding names against the Python parameters, durable trigger names.  An invalid app is refused
with an :class:`AppLoadError` whose message names the function.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from croniter import croniter

SUPPORTED_BINDINGS = {"httpTrigger", "http", "orchestrationTrigger", "activityTrigger", "timerTrigger",
                      "durableClient"}
TRIGGERS = {"httpTrigger", "orchestrationTrigger", "activityTrigger", "timerTrigger", "entityTrigger"}
ROUTE_CONSTRAINTS = {
    "int": r"-?\d+", "long": r"-?\d+", "bool": r"(?:true|false)", "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", "alpha": r"[A-Za-z]+", "float": r"-?\d+(?:\.\d+)?",
    "double": r"-?\d+(?:\.\d+)?", "decimal": r"-?\d+(?:\.\d+)?", "datetime": r"[^/]+",
}
PARAM_RE = re.compile(r"\{(\*{0,2})([A-Za-z_][A-Za-z0-9_]*)((?::[A-Za-z]+(?:\([^(){}]*\))?)*)(\?)?\}")
TIMESPAN_RE = re.compile(r"^(?:\d+\.)?\d{1,2}:\d{2}:\d{2}$")


class AppLoadError(Exception):
    """The app cannot be served as it is."""


@dataclass
class Route:
    template: str
    regex: re.Pattern
    names: list[str]
    literal_score: tuple


@dataclass
class FunctionInfo:
    name: str
    kind: str                      # http | orchestrator | activity | timer | entity
    func: Callable                 # what the worker calls
    bindings: list[dict]
    trigger_param: str
    client_params: list[str] = field(default_factory=list)
    wants_context: bool = False
    is_async: bool = False
    durable_name: str | None = None   # orchestration / activity name
    route: Route | None = None
    methods: list[str] | None = None
    auth_level: str = "function"
    schedule: str | None = None
    run_on_startup: bool = False


def compile_route(template: str) -> Route:
    """Compile an ASP.NET-style route template into a case-insensitive regex."""
    text = template.strip("/")
    if "//" in text:
        raise ValueError("empty path segment ('//')")
    segments = text.split("/") if text else []
    pattern = ""
    names: list[str] = []
    literal = 0
    for index, segment in enumerate(segments):
        sep = "/" if index else ""
        whole = PARAM_RE.fullmatch(segment)
        if whole:
            star, name, constraints, optional = whole.groups()
            names.append(name)
            if star:
                if index != len(segments) - 1:
                    raise ValueError(f"catch-all parameter '{{{star}{name}}}' must be the last segment")
                pattern += f"(?:{sep}(?P<{name}>.*))?" if sep else f"(?P<{name}>.*)"
                continue
            part = f"(?P<{name}>{_constraint_regex(constraints)})"
            pattern += f"(?:{sep}{part})?" if optional else sep + part
            continue
        # literal segment, possibly with embedded parameters ("{id}.json")
        rest = segment
        piece = ""
        for match in PARAM_RE.finditer(segment):
            _, name, constraints, optional = match.groups()
            if optional:
                raise ValueError(f"optional parameter '{name}' must be a whole segment")
            names.append(name)
            rest = rest.replace(match.group(0), "", 1)
        if "{" in rest or "}" in rest:
            raise ValueError(f"invalid route segment '{segment}' (unbalanced or malformed '{{...}}')")
        last = 0
        for match in PARAM_RE.finditer(segment):
            piece += re.escape(segment[last:match.start()])
            piece += f"(?P<{match.group(2)}>{_constraint_regex(match.group(3))})"
            last = match.end()
        piece += re.escape(segment[last:])
        if not PARAM_RE.search(segment):
            literal += 1
        pattern += sep + piece
    if len(set(names)) != len(names):
        raise ValueError("a route parameter name is used twice")
    regex = re.compile(pattern + "/?", re.IGNORECASE)
    # more literal segments first, then fewer parameters
    return Route(template, regex, names, (-literal, len(names)))


def _constraint_regex(constraints: str) -> str:
    regex = r"[^/]+"
    for constraint in filter(None, (constraints or "").split(":")):
        base = constraint.split("(")[0].lower()
        if base in ROUTE_CONSTRAINTS:
            regex = ROUTE_CONSTRAINTS[base]
        elif base in ("min", "max", "range", "length", "minlength", "maxlength", "regex"):
            continue
        else:
            raise ValueError(f"unknown route constraint '{constraint}'")
    return regex


def ncrontab_to_croniter(schedule: str) -> str:
    """Validate a 6-field NCRONTAB expression (seconds first) and return it for croniter."""
    fields = schedule.split()
    if len(fields) != 6:
        raise ValueError(f"expected 6 fields (second minute hour day month day-of-week), got {len(fields)}")
    if not croniter.is_valid(schedule, second_at_beginning=True):
        raise ValueError("not a valid NCRONTAB expression")
    return schedule


def resolve_setting(value: str) -> str:
    """'%NAME%' values are app settings, as in the real host."""
    match = re.fullmatch(r"%([^%]+)%", value or "")
    if match:
        if match.group(1) not in os.environ:
            raise ValueError(f"app setting '{match.group(1)}' (from '{value}') is not set")
        return os.environ[match.group(1)]
    return value


SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"
SCRIPT_FILE_DEFAULT = "function_app.py"


def discover_app():
    """Find the app as the Python worker does when no ``--app`` is given.

    azure-functions-python-worker ``loader.index_function_app``: import the script file (app setting
    PYTHON_SCRIPT_FILE_NAME, default function_app.py) as a module and take the one module attribute that is an
    ``azure.functions.FunctionRegister`` (FunctionApp, DFApp, ...), whatever its name; two are an error, none
    is an error.
    """
    from azure.functions import FunctionRegister

    script = os.environ.get(SCRIPT_FILE_SETTING) or SCRIPT_FILE_DEFAULT
    module_name = os.path.splitext(os.path.basename(script))[0]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    app = None
    for name in module.__dir__():
        candidate = getattr(module, name, None)
        if isinstance(candidate, FunctionRegister):
            if app is not None and candidate is not app:
                raise AppLoadError(f"More than one {app.__class__.__name__} or other top level function app "
                                   "instances are defined.")
            app = candidate
    if app is None:
        raise AppLoadError(f"Could not find top level function app instances in {script}.")
    return module, app


def import_app(spec: str | None):
    """The app named by ``module:attribute``, or (no spec) the one the worker would find in function_app.py."""
    if not spec:
        return discover_app()
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        return module, getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"module '{module_name}' has no attribute '{attribute}'") from None


def _parameters(func: Callable) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(func).parameters)


def load_functions(app) -> dict[str, FunctionInfo]:
    """Index the app and run the static checks; raise AppLoadError naming the function."""
    try:
        functions = app.get_functions()
    except ValueError as error:  # duplicate names are reported by the SDK itself
        raise AppLoadError(str(error)) from None
    out: dict[str, FunctionInfo] = {}
    durable_names: dict[tuple[str, str], str] = {}
    for function in functions:
        name = function.get_function_name()
        try:
            info = _index(function, name)
        except (ValueError, TypeError) as error:
            raise AppLoadError(f"Function '{name}': {error}") from None
        if name.lower() in {n.lower() for n in out}:
            raise AppLoadError(f"Function '{name}': the function name is not unique (names are case-insensitive)")
        if info.durable_name:
            key = (info.kind, info.durable_name.lower())
            if key in durable_names:
                raise AppLoadError(f"Function '{name}': {info.kind} name '{info.durable_name}' is already used by "
                                   f"function '{durable_names[key]}'")
            durable_names[key] = name
        out[name] = info
    _check_routes(out)
    return out


def _index(function, name: str) -> FunctionInfo:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]{0,127}", name or ""):
        raise ValueError("invalid function name (letters, digits, '_' and '-', starting with a letter)")
    document = json.loads(function.get_function_json())
    bindings = document["bindings"]
    func = function.get_user_function()
    triggers = [b for b in bindings if b["type"] in TRIGGERS or b["type"].endswith("Trigger")]
    if len(triggers) != 1:
        raise ValueError(f"a function needs exactly one trigger, found {len(triggers)}")
    trigger = triggers[0]
    for binding in bindings:
        if binding["type"] not in SUPPORTED_BINDINGS:
            raise ValueError(f"binding '{binding.get('name')}' of type '{binding['type']}' is not supported by the "
                             "sandbox host")
    kind = {"httpTrigger": "http", "orchestrationTrigger": "orchestrator", "activityTrigger": "activity",
            "timerTrigger": "timer"}.get(trigger["type"], trigger["type"])

    # the callable whose parameters must match the bindings
    if kind == "orchestrator":
        user = getattr(func, "orchestrator_function", None)
        if user is None:
            raise ValueError("orchestration trigger function was not created by DFApp.orchestration_trigger")
        params = _parameters(user)
    else:
        params = _parameters(func)
    binding_names = [b["name"] for b in bindings if b.get("name") != "$return"]
    for binding_name in binding_names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", binding_name):
            raise ValueError(f"invalid binding name '{binding_name}'")
        if binding_name not in params:
            raise ValueError(f"binding '{binding_name}' ({_type_of(bindings, binding_name)}) has no matching "
                             f"parameter; the Python function declares {sorted(params) or 'no parameters'}")
    extra = [p for p in params if p not in binding_names and p != "context"
             and params[p].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
             and params[p].default is inspect.Parameter.empty]
    if extra:
        raise ValueError(f"parameter(s) {extra} are declared in Python but not bound to any binding")
    if len(set(binding_names)) != len(binding_names):
        raise ValueError("two bindings have the same name")

    info = FunctionInfo(name=name, kind=kind, func=func, bindings=bindings, trigger_param=trigger["name"],
                        client_params=[b["name"] for b in bindings if b["type"] == "durableClient"],
                        wants_context="context" in params and "context" not in binding_names,
                        is_async=inspect.iscoroutinefunction(func))
    if kind == "orchestrator":
        if trigger["name"] not in _parameters(user):
            raise ValueError(f"orchestration trigger context name '{trigger['name']}' is not a parameter")
        info.durable_name = trigger.get("orchestration") or name
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", info.durable_name):
            raise ValueError(f"invalid orchestration name '{info.durable_name}'")
        if info.client_params:
            raise ValueError("an orchestrator cannot take a durable client binding (orchestrators do no I/O)")
    elif kind == "activity":
        info.durable_name = trigger.get("activity") or name
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", info.durable_name):
            raise ValueError(f"invalid activity name '{info.durable_name}'")
    elif kind == "http":
        route = trigger.get("route") or name
        try:
            info.route = compile_route(route)
        except (ValueError, re.error) as error:
            raise ValueError(f"invalid route '{route}': {error}") from None
        methods = trigger.get("methods")
        info.methods = [str(m).upper() for m in methods] if methods else None
        allowed = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"}
        if info.methods and not set(info.methods) <= allowed:
            raise ValueError(f"unknown HTTP method(s) {sorted(set(info.methods) - allowed)}")
        info.auth_level = str(trigger.get("authLevel") or "FUNCTION").lower()
        if info.auth_level not in ("anonymous", "function", "admin"):
            raise ValueError(f"unknown auth level '{trigger.get('authLevel')}'")
        if not any(b["type"] == "http" and b["direction"] == "OUT" for b in bindings):
            raise ValueError("an HTTP trigger needs an HTTP output binding")
    elif kind == "timer":
        schedule = resolve_setting(trigger.get("schedule") or "")
        if not TIMESPAN_RE.match(schedule):
            try:
                ncrontab_to_croniter(schedule)
            except (ValueError, KeyError) as error:
                raise ValueError(f"invalid NCRONTAB schedule '{schedule}': {error}") from None
        info.schedule = schedule
        info.run_on_startup = bool(trigger.get("runOnStartup"))
    elif kind == "entity":
        raise ValueError("durable entities are not supported by the sandbox host")
    return info


def _type_of(bindings: list[dict], name: str) -> str:
    return next((b["type"] for b in bindings if b.get("name") == name), "?")


def _check_routes(functions: dict[str, FunctionInfo]) -> None:
    seen: dict[str, tuple[str, set | None]] = {}
    for info in functions.values():
        if info.kind != "http":
            continue
        normal = re.sub(r"\{[^}]*\}", "{}", info.route.template.strip("/").lower())
        methods = set(info.methods) if info.methods else None
        if normal in seen:
            other, other_methods = seen[normal]
            if methods is None or other_methods is None or methods & other_methods:
                raise AppLoadError(f"Function '{info.name}': route '{info.route.template}' conflicts with function "
                                   f"'{other}' for the same method(s)")
        seen[normal] = (info.name, methods)
