"""Static checks the sandbox host applies when it loads an app (sandbox/host/registry.py)."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func
import pytest

from sandbox.host.registry import AppLoadError, compile_route, load_functions


def _app() -> df.DFApp:
    return df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


def test_valid_app_is_indexed_by_kind():
    app = _app()

    @app.route(route="items/{id:int}", methods=["GET"])
    def get_item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @app.orchestration_trigger(context_name="context")
    def flow(context):
        yield context.call_activity("step", 1)

    @app.activity_trigger(input_name="value", activity="step")
    def step_impl(value: int) -> int:
        return value

    @app.timer_trigger(schedule="0 30 2 * * *", arg_name="timer")
    def nightly(timer: func.TimerRequest) -> None:
        pass

    functions = load_functions(app)
    assert {name: info.kind for name, info in functions.items()} == {
        "get_item": "http", "flow": "orchestrator", "step_impl": "activity", "nightly": "timer"}
    assert functions["step_impl"].durable_name == "step"
    assert functions["get_item"].auth_level == "function"


@pytest.mark.parametrize("schedule", ["0 0 * * *", "every day", "0 0 25 * * *", "61 * * * * *"])
def test_bad_ncrontab_is_refused_naming_the_function(schedule):
    app = _app()

    @app.timer_trigger(schedule=schedule, arg_name="timer")
    def sweep(timer: func.TimerRequest) -> None:
        pass

    with pytest.raises(AppLoadError, match=r"Function 'sweep'.*NCRONTAB"):
        load_functions(app)


@pytest.mark.parametrize("route", ["items/{id", "items/{id:nosuch}", "a/{*rest}/b", "a/{x}/{x}", "a//b"])
def test_bad_route_is_refused(route):
    app = _app()

    @app.route(route=route)
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    with pytest.raises(AppLoadError, match=r"Function 'handler'.*route"):
        load_functions(app)


def test_binding_without_parameter_is_refused():
    app = _app()

    @app.route(route="x")
    def handler(request: func.HttpRequest) -> func.HttpResponse:   # binding is named 'req' by default
        return func.HttpResponse("ok")

    with pytest.raises(AppLoadError, match=r"Function 'handler'.*binding 'req'"):
        load_functions(app)


def test_orchestration_context_name_must_be_a_parameter():
    app = _app()

    @app.orchestration_trigger(context_name="ctx")
    def flow(context):
        yield context.call_activity("step", 1)

    with pytest.raises(AppLoadError, match=r"Function 'flow'"):
        load_functions(app)


def test_duplicate_activity_names_are_refused():
    app = _app()

    @app.activity_trigger(input_name="value", activity="step")
    def one(value: int) -> int:
        return value

    @app.activity_trigger(input_name="value", activity="Step")
    def two(value: int) -> int:
        return value

    with pytest.raises(AppLoadError, match=r"Function 'two'.*'Step' is already used by function 'one'"):
        load_functions(app)


def test_duplicate_function_names_are_refused():
    app = _app()

    @app.function_name("same")
    @app.route(route="a")
    def a(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("a")

    @app.function_name("same")
    @app.route(route="b")
    def b(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("b")

    with pytest.raises(AppLoadError, match=r"same"):
        load_functions(app)


def test_conflicting_routes_are_refused():
    app = _app()

    @app.route(route="things/{id}", methods=["GET"])
    def first(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("1")

    @app.route(route="things/{name}", methods=["GET", "POST"])
    def second(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("2")

    with pytest.raises(AppLoadError, match=r"Function 'second'.*conflicts with function 'first'"):
        load_functions(app)


def test_route_templates_match_like_aspnet():
    route = compile_route("onboardings/{id}/script")
    assert route.regex.fullmatch("onboardings/abc/script").groupdict() == {"id": "abc"}
    assert route.regex.fullmatch("ONBOARDINGS/abc/script")          # literals are case-insensitive
    assert not route.regex.fullmatch("onboardings/a/b/script")
    optional = compile_route("certificates/{id?}")
    assert optional.regex.fullmatch("certificates")
    assert optional.regex.fullmatch("certificates/x").group("id") == "x"
    assert compile_route("items/{id:guid}").regex.fullmatch("items/6f9619ff-8b86-d011-b42d-00cf4fc964ff")
    assert not compile_route("items/{id:guid}").regex.fullmatch("items/nope")
