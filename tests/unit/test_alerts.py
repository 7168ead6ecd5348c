"""Alert payloads (issue 11, item 3): the versioned JSON body, the Teams envelope with an Adaptive Card 1.4, the mail
(plain text and HTML with the same facts, escaped), the digest's 28 KB messages, and the webhook's classification
against a loopback receiver."""

from __future__ import annotations

import html
import http.server
import json
import threading

import pytest

from shared import alerts
from shared.failures import Permanent, Transient, classify
from shared.settings import Settings

STATUS = "https://api.contoso.com/api/onboardings/x/status?token=t"


def _alert(**overrides) -> dict:
    alert = {"id": alerts.alert_instance_id("cert-abc", "0123abcd", "certificateExpiry", 14),
             "schema": alerts.SCHEMA, "type": "certificateExpiry", "severity": "warning",
             "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "serviceMailbox": "o'brien+<svc>&co@contoso.com",
             "appId": "11111111-2222-3333-4444-555555555555", "thumbprint": "AB" * 20,
             "notAfter": "2027-01-15T00:00:00+00:00", "daysLeft": 14, "threshold": 14,
             "onboardingId": "72f988bf-86f1-41af-91ab-2d7cd011db47.0123456789abcdef0123", "detail": None}
    return {**alert, **overrides}


def test_instance_id_is_deterministic_per_version_kind_threshold() -> None:
    assert alerts.alert_instance_id("c", "v1", "certificateExpiry", 7) == "alert-c-v1-certificateExpiry-7"
    assert alerts.alert_instance_id("c", "v1", "certificateExpiry", 7) != alerts.alert_instance_id(
        "c", "v2", "certificateExpiry", 7)


def test_json_body_is_versioned_and_complete() -> None:
    body = alerts.json_body(_alert(), STATUS)
    assert body["schema"] == "certauth.alert/v1"
    assert body["id"] == "alert-cert-abc-0123abcd-certificateExpiry-14"
    for field in ("type", "severity", "tenantId", "serviceMailbox", "appId", "thumbprint", "notAfter", "daysLeft",
                  "threshold", "onboardingId", "statusUrl"):
        assert field in body, field
    assert body["statusUrl"] == STATUS
    assert body["daysLeft"] == 14
    json.dumps(body)  # JSON-safe


def _check_adaptive_card_1_4(message: dict) -> list[dict]:
    """The Teams Workflow envelope and the Adaptive Card schema's required fields; the card's body elements."""
    assert message["type"] == "message"
    assert len(message["attachments"]) == 1
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert isinstance(card["body"], list)
    assert card["body"]
    for element in card["body"]:
        assert element["type"] in ("TextBlock", "FactSet")
        if element["type"] == "TextBlock":
            assert isinstance(element["text"], str)
            assert element["text"]
        else:
            assert element["facts"]  # FactSet requires facts, each a title and a value (strings)
            assert all(isinstance(f["title"], str) and isinstance(f["value"], str) for f in element["facts"])
    assert len(json.dumps(message).encode()) <= 28 * 1024
    return card["body"]


def test_teams_body_is_an_adaptive_card_1_4_with_the_facts() -> None:
    body = _check_adaptive_card_1_4(alerts.webhook_body(_alert(), STATUS, "teams"))
    facts = {f["title"]: f["value"] for element in body if element["type"] == "FactSet" for f in element["facts"]}
    assert facts["Thumbprint"] == "AB" * 20
    assert facts["Days left"] == "14"
    assert facts["Status"] == STATUS
    assert facts["Mailbox"] == "o'brien+<svc>&co@contoso.com"
    assert "Detail" not in facts  # absent values are left out


def test_mail_has_the_same_facts_in_text_and_escaped_html() -> None:
    alert = _alert(detail="key <removed> & \"gone\"")
    content = alerts.mail_content([alert], [STATUS])
    assert "o'brien+<svc>&co@contoso.com" in content["subject"]
    for label, value in alerts.facts(alert, STATUS):
        assert f"{label}: {value}" in content["text"]
        assert f"<th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td>" in content["html"]
    assert "<removed>" not in content["html"]
    assert "&lt;removed&gt;" in content["html"]


def test_teams_digest_fits_28_kb_per_message_and_carries_every_alert() -> None:
    many = [_alert(id=f"alert-c{i}-v-certificateExpiry-7", thumbprint=f"{i:040X}") for i in range(120)]
    messages = alerts.digest_bodies("alert-digest-run1", many, [STATUS] * len(many), "teams")
    assert 1 < len(messages) < len(many)
    seen = []
    for message in messages:
        for element in _check_adaptive_card_1_4(message):
            if element["type"] == "FactSet":
                seen.append({f["title"]: f["value"] for f in element["facts"]}["Thumbprint"])
    assert seen == [a["thumbprint"] for a in many]


def test_json_digest_is_one_versioned_body() -> None:
    many = [_alert(id=f"a{i}") for i in range(3)]
    [body] = alerts.digest_bodies("alert-digest-run1", many, [None] * 3, "json")
    assert body["schema"] == "certauth.alertDigest/v1"
    assert body["id"] == "alert-digest-run1"
    assert [a["id"] for a in body["alerts"]] == ["a0", "a1", "a2"]


# -- the webhook's answers, classified (a loopback receiver: no mocks) ---------------------------------------

@pytest.fixture
def receiver():
    answers: list[int] = []
    bodies: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answers.pop(0) if answers else 202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook?sig=SECRET", answers, bodies
    server.shutdown()
    server.server_close()


def test_webhook_posts_the_body(receiver) -> None:
    url, _, bodies = receiver
    assert alerts.post_webhook(url, {"id": "a"}) == 202
    assert bodies == [{"id": "a"}]


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True), (408, True),
                                                   (400, False), (404, False)])
def test_webhook_failures_are_classified_without_the_url(receiver, status: int, transient: bool) -> None:
    url, answers, _ = receiver
    answers.append(status)
    with pytest.raises((Transient, Permanent)) as raised:
        alerts.post_webhook(url, {"id": "a"})
    failure = classify("alert:webhook", raised.value)
    assert failure.transient is transient
    assert failure.error["status"] == status
    assert "SECRET" not in json.dumps(failure.error)
    assert "127.0.0.1" not in json.dumps(failure.error)


def test_unreachable_webhook_is_transient_without_the_url() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(Transient) as raised:
        alerts.post_webhook(f"http://127.0.0.1:{port}/hook?sig=SECRET", {"id": "a"})
    failure = classify("alert:webhook", raised.value)
    assert failure.transient
    assert "SECRET" not in json.dumps(failure.error)


def test_deliver_digest_sends_teams_messages_and_reports_each_sink(receiver) -> None:
    url, answers, bodies = receiver
    settings = Settings(alert_webhook_url=url, alert_webhook_format="teams")
    many = [_alert(id=f"alert-c{i}-v-certificateExpiry-1") for i in range(3)]
    assert alerts.deliver_digest(settings, many, [None] * 3, "alert-digest-run2") == {"webhook": None}
    [message] = bodies
    _check_adaptive_card_1_4(message)
    answers.append(503)
    outcome = alerts.deliver_digest(settings, many, [None] * 3, "alert-digest-run3")
    assert outcome["webhook"]["status"] == 503
    assert "SECRET" not in json.dumps(outcome)


def test_a_long_detail_still_fits_one_teams_message() -> None:
    message = alerts.teams_body(_alert(type="drift", detail="x" * 100_000), STATUS)
    _check_adaptive_card_1_4(message)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook?sig=SECRET with space", "nonsense?sig=SECRET"])
def test_an_invalid_webhook_url_is_permanent_and_not_repeated(url: str) -> None:
    with pytest.raises(Permanent) as raised:
        alerts.post_webhook(url, {"id": "a"})
    failure = classify("alert:webhook", raised.value)
    assert not failure.transient
    assert "SECRET" not in json.dumps(failure.error)
