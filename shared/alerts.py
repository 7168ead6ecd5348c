"""Alerts: the deterministic id of an alert, its payloads (the versioned JSON body, the Teams Adaptive Card envelope,
the mail) and their delivery to the sinks (the webhook, Graph sendMail as the Function App's identity).

An alert (the monitor's dict, JSON-safe, no secrets) is ``{"id", "schema": "certauth.alert/v1", "type", "severity",
"tenantId", "serviceMailbox", "appId", "thumbprint", "notAfter", "daysLeft", "threshold", "onboardingId",
"detail"}``. The status URL is added at delivery time. The webhook URL bears a secret (a Logic App trigger's
``sig=``): it is read from the settings when a request is sent and never logged, stored or put into an error.
"""

from __future__ import annotations

import html
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Sequence

from .failures import THROTTLING, TRANSIENT, Permanent, Transient

SCHEMA = "certauth.alert/v1"
DIGEST_SCHEMA = "certauth.alertDigest/v1"
TYPES = ("certificateExpiry", "certificateExpired", "drift", "rotating", "manualActionNeeded")
SEVERITIES = ("info", "warning", "critical")
WEBHOOK, MAIL = "webhook", "mail"
# Teams Workflows take at most 28 KB per message (REFERENCE.md "Teams alerts"; msteams-docs connectors-using.md).
TEAMS_MAX_BYTES = 28 * 1024
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
WEBHOOK_TIMEOUT_SECONDS = 30
# A fact (a drift's detail) is cut here, so that one alert's card always fits in a Teams message.
MAX_FACT_CHARS = 2000
_TITLES = {"certificateExpiry": "Certificate expires soon", "certificateExpired": "Certificate expired",
           "drift": "Certificate drift", "rotating": "Certificate rotating",
           "manualActionNeeded": "Manual action needed"}
# The facts every payload carries, in this order: (alert field, label).
FACTS = (("type", "Type"), ("severity", "Severity"), ("tenantId", "Tenant"), ("serviceMailbox", "Mailbox"),
         ("appId", "App id"), ("thumbprint", "Thumbprint"), ("notAfter", "Not after"), ("daysLeft", "Days left"),
         ("threshold", "Threshold (days)"), ("onboardingId", "Onboarding"), ("detail", "Detail"),
         ("id", "Alert id"))  # the id in every format: receivers drop duplicates
_FIELDS = ("id", "schema", *(name for name, _ in FACTS if name != "id"))


def alert_instance_id(certificate_name: str, version: str, kind: str, threshold) -> str:
    """The alert's orchestration id (and payload id): one per certificate version, kind and threshold."""
    return f"alert-{certificate_name}-{version}-{kind}-{threshold}"


def title(alert: dict) -> str:
    """A one-line subject: what happened, to which mailbox."""
    return f"certauth: {_TITLES.get(alert.get('type'), 'Alert')} ({alert.get('serviceMailbox') or alert.get('appId')})"


def facts(alert: dict, status_url: str | None = None) -> list[tuple[str, str]]:
    """The alert's facts as (label, text), the same in every format; absent values are left out."""
    pairs = [(label, str(alert[name])[:MAX_FACT_CHARS]) for name, label in FACTS if alert.get(name) not in (None, "")]
    if status_url:
        pairs.append(("Status", status_url))
    return pairs


def json_body(alert: dict, status_url: str | None = None) -> dict:
    """The documented webhook body (schema certauth.alert/v1), for Logic Apps and any HTTP endpoint."""
    body = {name: alert.get(name) for name in _FIELDS}
    body["schema"] = SCHEMA
    body["statusUrl"] = status_url
    return body


def _card_section(alert: dict, status_url: str | None) -> list[dict]:
    color = {"critical": "Attention", "warning": "Warning"}.get(alert.get("severity"), "Default")
    return [
        {"type": "TextBlock", "text": title(alert), "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": color},
        {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in facts(alert, status_url)]},
    ]


def adaptive_card(body: list[dict]) -> dict:
    """An Adaptive Card 1.4 with the given body elements."""
    return {"$schema": ADAPTIVE_CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}


def teams_message(card: dict) -> dict:
    """The envelope a Teams Workflow ("When a Teams webhook request is received") accepts: Adaptive Cards only."""
    return {"type": "message",
            "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


def teams_body(alert: dict, status_url: str | None = None) -> dict:
    """One alert as a Teams message."""
    return teams_message(adaptive_card(_card_section(alert, status_url)))


def webhook_body(alert: dict, status_url: str | None, webhook_format: str) -> dict:
    """The webhook body in the configured format (json | teams)."""
    return teams_body(alert, status_url) if webhook_format == "teams" else json_body(alert, status_url)


def _size(body: dict) -> int:
    return len(json.dumps(body).encode())


def digest_bodies(digest_id: str, alerts: Sequence[dict], status_urls: Sequence[str | None],
                  webhook_format: str) -> list[dict]:
    """A run's alerts as few webhook requests: Teams throttles above 4 requests a second, so one message carries
    as many alerts as fit in 28 KB; the json format sends one certauth.alertDigest/v1 body."""
    pairs = list(zip(alerts, status_urls, strict=True))
    if webhook_format != "teams":
        return [{"schema": DIGEST_SCHEMA, "id": digest_id, "count": len(pairs),
                 "alerts": [json_body(alert, url) for alert, url in pairs]}]
    messages: list[dict] = []
    body: list[dict] = []
    for alert, url in pairs:
        section = _card_section(alert, url)
        header = [{"type": "TextBlock", "text": f"certauth: {len(pairs)} alerts ({digest_id})", "weight": "Bolder",
                   "size": "Large", "wrap": True}]
        candidate = (body or header) + section
        if body and _size(teams_message(adaptive_card(candidate))) > TEAMS_MAX_BYTES:
            messages.append(teams_message(adaptive_card(body)))
            candidate = header + section
        body = candidate
    if body:
        messages.append(teams_message(adaptive_card(body)))
    return messages


def mail_content(alerts: Sequence[dict], status_urls: Sequence[str | None]) -> dict:
    """Subject, plain text and HTML of one mail about one or more alerts: the same facts, the HTML escaped."""
    pairs = list(zip(alerts, status_urls, strict=True))
    subject = title(pairs[0][0]) if len(pairs) == 1 else f"certauth: {len(pairs)} certificate alerts"
    text_parts, html_parts = [], []
    for alert, url in pairs:
        rows = facts(alert, url)
        text_parts.append("\n".join([title(alert), *(f"{label}: {value}" for label, value in rows)]))
        cells = "".join(f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                        for label, value in rows)
        html_parts.append(f"<h3>{html.escape(title(alert))}</h3><table>{cells}</table>")
    return {"subject": subject, "text": "\n\n".join(text_parts) + "\n",
            "html": f"<html><body>{''.join(html_parts)}</body></html>"}


# -- delivery ------------------------------------------------------------------------------------------------

def post_webhook(url: str, body: dict, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> int:
    """POST the body as JSON; the status on 2xx. 408, 429 and 5xx and connection failures raise Transient, any
    other answer Permanent. Errors never carry the URL (urllib logs nothing; its errors name no URL here)."""
    try:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        status = error.code
        error.close()
        message = f"the alert webhook answered {status}"
        if status == 429:
            raise Transient(message, THROTTLING, "WebhookThrottled", status) from None
        if status == 408 or status >= 500:
            raise Transient(message, TRANSIENT, "WebhookUnavailable", status) from None
        raise Permanent(status, "WebhookRejected", message,
                        fix="check CERTAUTH_ALERT_WEBHOOK_URL and the receiver's trigger") from None
    except (ValueError, http.client.InvalidURL):
        # http.client.InvalidURL and urllib's "unknown url type" repeat the URL: name nothing of it.
        raise Permanent(0, "WebhookUrlInvalid", "CERTAUTH_ALERT_WEBHOOK_URL is not a valid URL") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise Transient(f"the alert webhook could not be reached: {type(reason).__name__}", TRANSIENT,
                        "WebhookUnreachable", 0) from None


async def send_mail(settings, content: dict) -> None:
    """Graph sendMail from CERTAUTH_ALERT_MAIL_FROM to CERTAUTH_ALERT_MAIL_TO as the Function App's identity in
    its home tenant (Mail.Send). Graph's JSON message has one body: HTML, with the plain text attached."""
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.file_attachment import FileAttachment
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.recipient import Recipient
    from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

    from .credentials import home_credential
    from .graph import OffLoopCredential, _graph_error, graph_client

    sender = settings.require("alert_mail_from")
    recipients = settings.alert_mail_recipients
    if not recipients:
        raise Permanent(0, "NoMailRecipients", "CERTAUTH_ALERT_MAIL_TO names no address")
    text = FileAttachment(odata_type="#microsoft.graph.fileAttachment", name="alert.txt", content_type="text/plain",
                          content_bytes=content["text"].encode())
    message = Message(subject=content["subject"], body=ItemBody(content_type=BodyType.Html, content=content["html"]),
                      to_recipients=[Recipient(email_address=EmailAddress(address=a)) for a in recipients],
                      attachments=[text])
    client = graph_client(settings, OffLoopCredential(home_credential(settings)))
    try:
        await client.users.by_user_id(sender).send_mail.post(
            SendMailPostRequestBody(message=message, save_to_sent_items=False))
    except Exception as exc:
        raise _graph_error(exc) from exc


def configured_sinks(settings) -> list[str]:
    """The sinks the settings turn on: the webhook (a URL), mail (a sender and recipients)."""
    sinks = []
    if settings.alert_webhook_url:
        sinks.append(WEBHOOK)
    if settings.alert_mail_from and settings.alert_mail_recipients:
        sinks.append(MAIL)
    return sinks


async def deliver(settings, sink: str, alerts: Sequence[dict], status_urls: Sequence[str | None],
                  digest_id: str | None = None) -> None:
    """Send one alert (or, with `digest_id`, a run's digest) to one sink; raises what failures.classify reads."""
    import asyncio

    if sink == WEBHOOK:
        url = settings.alert_webhook_url
        if not url:
            raise Permanent(0, "WebhookNotConfigured", "CERTAUTH_ALERT_WEBHOOK_URL is not set")
        if digest_id is None:
            bodies = [webhook_body(alerts[0], status_urls[0], settings.alert_webhook_format)]
        else:
            bodies = digest_bodies(digest_id, alerts, status_urls, settings.alert_webhook_format)
        for body in bodies:
            await asyncio.to_thread(post_webhook, url, body)
        return
    if sink == MAIL:
        await send_mail(settings, mail_content(alerts, status_urls))
        return
    raise Permanent(0, "UnknownSink", f"no alert sink {sink!r}")


def deliver_digest(settings, alerts: Sequence[dict], status_urls: Sequence[str | None], digest_id: str):
    """Deliver a run's alerts to every configured sink as one digest; returns {sink: error or None}."""
    import asyncio

    from .failures import classify

    async def each() -> dict:
        outcome = {}
        for sink in configured_sinks(settings):
            try:
                await deliver(settings, sink, alerts, status_urls, digest_id)
                outcome[sink] = None
            except Exception as exc:
                outcome[sink] = classify(f"alert:{sink}", exc).error
        return outcome

    return asyncio.run(each())
