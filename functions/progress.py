"""The progress page for people: GET /api/onboardings/{id}/view?token=…, one onboarding's steps as they complete,
the result, or the error with what to do next; and, for the manual method, the page's own actions: the script
download (GET …/view/script?token=…) and the verify button (POST …/view/verify?token=…).

The tenant's administrator reaches it from the consent callback or from the `viewUrl` of a 202. It is anonymous at
the Functions level: the onboarding's status token authorises the page and its actions (check_status_token), never
the function key, which the administrator doesn't hold. The page is rendered here from the body the status JSON
answers (onboarding_status_body); a small inline script (CSP nonce) polls that JSON at the status URL (same origin,
as often as its Retry-After says, within bounds) and rebuilds the same markup with DOM calls and textContent only.
Without JavaScript a <noscript> meta refresh reloads the page while it is not terminal. Every value from the record,
Graph or the request goes through `escape` here and through textContent there.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from functions.api import TERMINAL, public_base, retry_after, view_link
from functions.manual import ManualRefused, onboarding_script, request_verification, script_response
from functions.onboarding import check_status_token, onboarding_status_body
from functions.pages import escape, handled_page, html_page, message_page, new_nonce
from shared.settings import get_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

AUTOMATIC_STEPS = (
    ("certificate", "Certificate in Key Vault"),
    ("application", "App registration"),
    ("servicePrincipal", "Service principal"),
    ("consent", "Admin consent to the API permissions"),
    ("directoryRole", "Directory role"),
    ("keyCredential", "Certificate on the app registration"),
    ("proof", "Proof: an app-only token with the new certificate"),
    ("record", "Recorded"),
)
# The automatic method runs independent steps at once (functions/onboarding.py onboarding_plan): a step shows done
# when `created` holds what it made (AUTOMATIC_MADE), or when a step that needs it (AUTOMATIC_NEEDS) has started.
AUTOMATIC_NEEDS = {"servicePrincipal": ["application"], "consent": ["servicePrincipal"],
                   "directoryRole": ["servicePrincipal"], "keyCredential": ["certificate", "application"],
                   "proof": ["keyCredential", "consent", "directoryRole"], "record": ["proof"]}
AUTOMATIC_MADE = {"certificate": "certificate", "application": "application", "servicePrincipal": "servicePrincipalId",
                  "consent": "permissions", "directoryRole": "directoryRole", "keyCredential": "keyCredential"}
MANUAL_STEPS = (
    ("certificate", "Certificate in Key Vault"),
    ("waitingForAdmin", "The administrator runs the script"),
    ("verification", "Read-only verification"),
    ("proof", "Proof: an app-only token with the new certificate"),
    ("record", "Recorded"),
)
# What the mark and the words say for each state of a step (the mark is decoration: aria-hidden).
STATES = {"done": ("✓", "done"), "running": ("…", "in progress"), "waiting": ("●", "waiting for you"),
          "attention": ("!", "needs your attention"), "failed": ("✗", "failed"), "pending": ("○", "not started")}
# By lifecycle status: the box's kind, its headline and what it means.
HEADLINES = {
    "pending": ("info", "Starting", "The onboarding is queued and starts in a moment."),
    "running": ("info", "In progress", "certauth is setting up certificate-based access in the tenant; this takes a "
                "minute or two."),
    "waitingForAdmin": ("warning", "Waiting for the administrator", "A Global Administrator of the tenant downloads "
                        "the script below, runs it, and presses the verify button."),
    "waitingForCertificate": ("warning", "Waiting for your certificate", "Your certificate authority signs the "
                              "certificate request; the onboarding goes on once the certificate is merged."),
    "needsAttention": ("warning", "Needs your attention", "The verification found something missing (below): run the "
                       "script again, then press the verify button."),
    "completed": ("ok", "Completed", "Certificate-based access is set up and proven with a real app-only token."),
    "failed": ("error", "Failed", "The onboarding stopped at the step below; what to do next is under the error."),
    "expired": ("error", "Expired", "Nothing happened before the deadline."),
    "retired": ("", "Removed", "This onboarding was offboarded: certauth removed what it had set up."),
}
WAITING = ("waitingForAdmin", "needsAttention")
# The Graph application permission of the onboarding app that each step needs (a 403 there means it is missing).
STEP_PERMISSIONS = {"application": "Application.ReadWrite.OwnedBy", "servicePrincipal": "Application.ReadWrite.OwnedBy",
                    "consent": "AppRoleAssignment.ReadWrite.All", "directoryRole": "RoleManagement.ReadWrite.Directory",
                    "keyCredential": "Application.ReadWrite.OwnedBy"}
NEXT = {
    "forbidden": "Microsoft Graph refused this step: the onboarding app needs the {permission} application "
                 "permission in the tenant. A Global Administrator consents to the onboarding app again (the "
                 "onboarding link asks for every permission it needs); then start the onboarding again: what "
                 "exists already is reused.",
    "expired": "Start the onboarding again (the onboarding link, or your provider asks for it again): the "
               "certificate is reused and a new deadline starts.",
    "failed": "Fix the cause above, then start the onboarding again (the onboarding link, or your provider asks for "
              "it again): every step is repeatable, what exists already is reused.",
}
# The page polls no faster than a second and no slower than this, whatever Retry-After says: people watch it.
MAX_POLL_SECONDS = 15

STATUS_TOKEN_REFUSED = [
    "This link is missing its token, has expired, or belongs to another onboarding.",
    "Open the newest link you were given, or ask your provider for a new one.",
]


def _steps_of(method: str | None) -> tuple[tuple[str, str], ...]:
    return MANUAL_STEPS if method == "manual" else AUTOMATIC_STEPS


def step_states(body: dict) -> list[tuple[str, str, str]]:
    """(key, label, state) of each step of the body's method, from its lifecycle status, step and error."""
    steps = _steps_of(body.get("method"))
    status = body.get("status") or "pending"
    if status in ("completed", "retired"):
        return [(key, label, "done") for key, label in steps]
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    current = error.get("step") if status in ("failed", "expired") and error.get("step") else body.get("step")
    keys = [key for key, _ in steps]
    at = keys.index(current) if current in keys else 0
    if status in ("failed", "expired"):
        now = "failed"
    elif status == "needsAttention":
        now = "attention"
    elif current == "waitingForAdmin" or status == "waitingForCertificate":
        now = "waiting"
    else:
        now = "running"
    if body.get("method") == "manual":  # one step at a time
        return [(key, label, "done" if i < at else now if i == at else "pending")
                for i, (key, label) in enumerate(steps)]
    created = body.get("created") if isinstance(body.get("created"), dict) else {}
    if status in ("failed", "expired"):
        active = [current] if current in keys else []
    else:
        listed = body.get("steps") if isinstance(body.get("steps"), list) else []
        active = [key for key in keys if key in listed] or [current if current in keys else keys[0]]
    states: dict[str, str] = {}
    for key in reversed(keys):  # a step's dependents come after it
        started = any(states[later] != "pending" for later in keys if key in AUTOMATIC_NEEDS.get(later, ()))
        made = key in AUTOMATIC_MADE and AUTOMATIC_MADE[key] in created
        states[key] = now if key in active else "done" if made or started else "pending"
    return [(key, label, states[key]) for key, label in steps]


def step_detail(key: str, created: dict) -> str | None:
    """What a finished step made, in a few words (from the body's `created`)."""
    if key == "certificate" and isinstance(created.get("certificate"), dict):
        return f"thumbprint {created['certificate'].get('thumbprint')}"
    if key == "application":
        app = created.get("application") if isinstance(created.get("application"), dict) else {}
        app_id = app.get("appId") or created.get("appId")
        return f"app (client) id {app_id}" if app_id else None
    if key == "servicePrincipal" and created.get("servicePrincipalId"):
        return f"object id {created['servicePrincipalId']}"
    if key == "consent" and isinstance(created.get("permissions"), list):
        return ", ".join(str(p) for p in created["permissions"])
    if key == "directoryRole" and "directoryRole" in created:
        return str(created["directoryRole"]) if created["directoryRole"] else "none requested"
    if key == "keyCredential" and isinstance(created.get("keyCredential"), dict):
        return f"thumbprint {created['keyCredential'].get('thumbprint')}"
    return None


def next_step(body: dict) -> str:
    """What to do about a failed or expired onboarding."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    if body.get("status") == "expired":
        return NEXT["expired"]
    if error.get("fix"):
        return str(error["fix"])
    if error.get("status") == 403 and error.get("step") in STEP_PERMISSIONS:
        return NEXT["forbidden"].replace("{permission}", STEP_PERMISSIONS[error["step"]])
    return NEXT["failed"]


def web_url(value) -> str | None:
    """`value` when it is an http(s) URL (a link's href never runs script), else None."""
    return value if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") else None


def _facts(rows: list[tuple[str, object]]) -> str:
    items = "".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in rows
                    if value not in (None, "", []))
    return f'<dl class="facts">{items}</dl>'


def result_rows(body: dict) -> list[tuple[str, object]]:
    """The completed onboarding's facts."""
    certificate = body.get("certificate") if isinstance(body.get("certificate"), dict) else {}
    application = body.get("application") if isinstance(body.get("application"), dict) else {}
    permissions = body.get("permissions") if isinstance(body.get("permissions"), list) else []
    return [("App (client) id", application.get("appId")), ("Service principal", body.get("servicePrincipalId")),
            ("Certificate thumbprint", certificate.get("thumbprint")),
            ("Certificate valid until", certificate.get("notAfter")),
            ("Permissions", ", ".join(str(p) for p in permissions)),
            ("Directory role", body.get("directoryRole") or "none")]


def error_rows(body: dict) -> list[tuple[str, object]]:
    """The failure's facts: the step, the service's answer and its message, as the service said it."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    labels = dict(_steps_of(body.get("method")))
    step = error.get("step")
    answer = " ".join(str(part) for part in (error.get("status") or None, error.get("code")) if part)
    return [("Step", labels.get(step, step)), ("Answer", answer), ("Message", error.get("message"))]


def _warning_text(warning) -> str:
    if isinstance(warning, dict):
        return str(warning.get("message") or warning.get("code") or json.dumps(warning))
    return str(warning)


def render_view(body: dict, script_url: str, verify_url: str) -> str:
    """The markup of the page's changing part (the script's `view` builds the same from the status JSON)."""
    status = body.get("status") or "pending"
    kind, headline, meaning = HEADLINES.get(status, ("", status, ""))
    parts = [f'<div class="box {kind}" id="state"><p><strong>{escape(headline)}</strong></p>'
             f"<p>{escape(meaning)}</p></div>", '<h2>Steps</h2><ol class="steps" id="steps">']
    created = body.get("created") if isinstance(body.get("created"), dict) else {}
    for key, label, state in step_states(body):
        mark, words = STATES[state]
        current = ' aria-current="step"' if state not in ("done", "pending") else ""
        detail = step_detail(key, created) if state == "done" else None
        parts.append(f'<li data-step="{escape(key)}" data-state="{state}"{current}>'
                     f'<span class="mark" aria-hidden="true">{mark}</span><span class="label">{escape(label)}</span> '
                     f'<span class="state">({words})</span>'
                     + (f'<span class="detail">{escape(detail)}</span>' if detail else "") + "</li>")
    parts.append("</ol>")
    if body.get("method") == "manual" and status in WAITING:
        consent = web_url(body.get("adminConsentUrl"))
        items = []
        if consent:
            items.append(f'<li>Consent once to certauth\'s read-only verifier app: <a id="consent" href="'
                         f'{escape(consent)}">open the consent page</a>.</li>')
        items.append(f'<li><a class="button" id="script" href="{escape(script_url)}" download>Download the '
                     "PowerShell script</a> and run it as a Global Administrator (PowerShell 7).</li>")
        items.append(f'<li><form id="verify" method="post" action="{escape(verify_url)}"><button type="submit">'
                     'I ran the script: verify now</button></form><p id="verify-note" class="muted"></p></li>')
        parts.append('<section id="manual"><h2>What the administrator does</h2><ol>' + "".join(items) + "</ol>")
        verification = body.get("verification") if isinstance(body.get("verification"), dict) else {}
        missing = verification.get("missing") if isinstance(verification.get("missing"), list) else []
        if missing:
            parts.append('<h3>Missing</h3><ul id="missing">' + "".join(f"<li>{escape(m)}</li>" for m in missing)
                         + "</ul>")
        parts.append("</section>")
    if status == "completed":
        parts.append('<section id="result"><h2>Result</h2>' + _facts(result_rows(body)) + "</section>")
    if status in ("failed", "expired"):
        parts.append('<section id="error" class="box error"><h2>What went wrong</h2>' + _facts(error_rows(body))
                     + f'<h3>What to do next</h3><p id="next">{escape(next_step(body))}</p></section>')
    warnings = body.get("warnings") if isinstance(body.get("warnings"), list) else []
    if warnings:
        parts.append('<section id="warnings" class="box warning"><h2>Warnings</h2><ul>'
                     + "".join(f"<li>{escape(_warning_text(w))}</li>" for w in warnings) + "</ul></section>")
    return "".join(parts)


def poll_seconds(body: dict, custom: dict) -> int:
    """How long until the page looks again: the status URL's Retry-After, within the page's bounds."""
    return max(1, min(MAX_POLL_SECONDS, retry_after(body.get("status"), custom)))


# The page's script. It never builds markup from data: el() makes elements, text goes in as text nodes (append of
# a string) or textContent, and hrefs only for http(s) URLs. `view` mirrors render_view above.
SCRIPT = """(() => {
"use strict";
const C = %s;
const root = document.getElementById("progress");
const announce = document.getElementById("announce");
const footer = document.getElementById("updates");
let timer = null, lastText = null, notice = "";
root.dataset.script = "on";
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined && child !== "") node.append(child);
  return node;
};
const obj = (v) => (v && typeof v === "object" && !Array.isArray(v)) ? v : {};
const list = (v) => Array.isArray(v) ? v : [];
const webUrl = (v) => {
  if (typeof v !== "string") return null;
  try { const u = new URL(v); return (u.protocol === "https:" || u.protocol === "http:") ? v : null; }
  catch (e) { return null; }
};
const stepsOf = (method) => method === "manual" ? C.manualSteps : C.automaticSteps;
function stepStates(body) {
  const steps = stepsOf(body.method), status = body.status || "pending";
  if (status === "completed" || status === "retired") return steps.map(([k, l]) => [k, l, "done"]);
  const error = obj(body.error);
  const current = ((status === "failed" || status === "expired") && error.step) ? error.step : body.step;
  const keys = steps.map(([k]) => k);
  const at = keys.includes(current) ? keys.indexOf(current) : 0;
  let now = "running";
  if (status === "failed" || status === "expired") now = "failed";
  else if (status === "needsAttention") now = "attention";
  else if (current === "waitingForAdmin" || status === "waitingForCertificate") now = "waiting";
  if (body.method === "manual") return steps.map(([k, l], i) => [k, l, i < at ? "done" : i === at ? now : "pending"]);
  const created = obj(body.created), listed = Array.isArray(body.steps) ? body.steps : [];
  let active;
  if (status === "failed" || status === "expired") active = keys.includes(current) ? [current] : [];
  else {
    active = keys.filter((k) => listed.includes(k));
    if (!active.length) active = [keys.includes(current) ? current : keys[0]];
  }
  const states = {};
  for (const key of [...keys].reverse()) {
    const started = keys.some((later) => (C.needs[later] || []).includes(key) && states[later] !== "pending");
    const made = Object.prototype.hasOwnProperty.call(C.made, key) && C.made[key] in created;
    states[key] = active.includes(key) ? now : (made || started) ? "done" : "pending";
  }
  return steps.map(([k, l]) => [k, l, states[k]]);
}
function stepDetail(key, created) {
  if (key === "certificate" && created.certificate && typeof created.certificate === "object")
    return "thumbprint " + String(created.certificate.thumbprint);
  if (key === "application") {
    const id = obj(created.application).appId || created.appId;
    return id ? "app (client) id " + String(id) : null;
  }
  if (key === "servicePrincipal" && created.servicePrincipalId)
    return "object id " + String(created.servicePrincipalId);
  if (key === "consent" && Array.isArray(created.permissions)) return created.permissions.map(String).join(", ");
  if (key === "directoryRole" && "directoryRole" in created)
    return created.directoryRole ? String(created.directoryRole) : "none requested";
  if (key === "keyCredential" && created.keyCredential && typeof created.keyCredential === "object")
    return "thumbprint " + String(created.keyCredential.thumbprint);
  return null;
}
function nextStep(body) {
  const error = obj(body.error);
  if (body.status === "expired") return C.next.expired;
  if (error.fix) return String(error.fix);
  if (error.status === 403 && C.permissions[error.step])
    return C.next.forbidden.replace("{permission}", C.permissions[error.step]);
  return C.next.failed;
}
function facts(rows) {
  const dl = el("dl", {class: "facts"});
  for (const [name, value] of rows) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(el("dt", {}, name), el("dd", {}, String(value)));
  }
  return dl;
}
function resultRows(body) {
  const certificate = obj(body.certificate), application = obj(body.application);
  return [["App (client) id", application.appId], ["Service principal", body.servicePrincipalId],
          ["Certificate thumbprint", certificate.thumbprint], ["Certificate valid until", certificate.notAfter],
          ["Permissions", list(body.permissions).map(String).join(", ")],
          ["Directory role", body.directoryRole || "none"]];
}
function errorRows(body) {
  const error = obj(body.error), labels = Object.fromEntries(stepsOf(body.method));
  const answer = [error.status || null, error.code].filter((p) => p).map(String).join(" ");
  return [["Step", labels[error.step] || error.step], ["Answer", answer], ["Message", error.message]];
}
const warningText = (w) => (w && typeof w === "object") ? String(w.message || w.code || JSON.stringify(w)) : String(w);
function view(body) {
  const status = body.status || "pending";
  const [kind, headline, meaning] = C.headlines[status] || ["", status, ""];
  const out = document.createDocumentFragment();
  out.append(el("div", {class: "box " + kind, id: "state"}, el("p", {}, el("strong", {}, headline)),
                el("p", {}, meaning)));
  const steps = el("ol", {class: "steps", id: "steps"});
  const created = obj(body.created);
  for (const [key, label, state] of stepStates(body)) {
    const [mark, words] = C.states[state];
    const li = el("li", {"data-step": key, "data-state": state},
                  el("span", {class: "mark", "aria-hidden": "true"}, mark), el("span", {class: "label"}, label), " ",
                  el("span", {class: "state"}, "(" + words + ")"));
    if (state !== "done" && state !== "pending") li.setAttribute("aria-current", "step");
    const detail = state === "done" ? stepDetail(key, created) : null;
    if (detail) li.append(el("span", {class: "detail"}, detail));
    steps.append(li);
  }
  out.append(el("h2", {}, "Steps"), steps);
  if (body.method === "manual" && C.waiting.includes(status)) {
    const items = el("ol");
    const consent = webUrl(body.adminConsentUrl);
    if (consent) items.append(el("li", {}, "Consent once to certauth's read-only verifier app: ",
                                 el("a", {id: "consent", href: consent}, "open the consent page"), "."));
    const script = el("a", {class: "button", id: "script", href: root.dataset.scriptUrl, download: ""},
                      "Download the PowerShell script");
    items.append(el("li", {}, script, " and run it as a Global Administrator (PowerShell 7)."));
    const form = el("form", {id: "verify", method: "post", action: root.dataset.verifyUrl},
                    el("button", {type: "submit"}, "I ran the script: verify now"));
    form.addEventListener("submit", verify);
    items.append(el("li", {}, form, el("p", {id: "verify-note", class: "muted"}, notice)));
    const section = el("section", {id: "manual"}, el("h2", {}, "What the administrator does"), items);
    const missing = list(obj(body.verification).missing);
    if (missing.length)
      section.append(el("h3", {}, "Missing"),
                     el("ul", {id: "missing"}, ...missing.map((m) => el("li", {}, String(m)))));
    out.append(section);
  }
  if (status === "completed")
    out.append(el("section", {id: "result"}, el("h2", {}, "Result"), facts(resultRows(body))));
  if (status === "failed" || status === "expired")
    out.append(el("section", {id: "error", class: "box error"}, el("h2", {}, "What went wrong"), facts(errorRows(body)),
                  el("h3", {}, "What to do next"), el("p", {id: "next"}, nextStep(body))));
  const warnings = list(body.warnings);
  if (warnings.length)
    out.append(el("section", {id: "warnings", class: "box warning"}, el("h2", {}, "Warnings"),
                  el("ul", {}, ...warnings.map((w) => el("li", {}, warningText(w))))));
  return out;
}
function render(body, text) {
  if (text === lastText) return;
  lastText = text;
  const before = root.dataset.lifecycle;
  root.replaceChildren(view(body));
  root.dataset.lifecycle = body.status || "pending";
  if (before !== root.dataset.lifecycle)
    announce.textContent = (C.headlines[body.status] || ["", String(body.status)])[1];
}
function schedule(seconds) {
  clearTimeout(timer);
  timer = setTimeout(poll, Math.max(1, Math.min(C.maxPoll, seconds)) * 1000);
}
async function poll() {
  let seconds = C.maxPoll;
  try {
    const response = await fetch(root.dataset.statusUrl, {cache: "no-store", credentials: "omit",
                                                          headers: {Accept: "application/json"}});
    if (response.status === 403) { footer.textContent = C.expiredLink; return; }
    if (response.ok) {
      const text = await response.text();
      const body = JSON.parse(text);
      render(body, text);
      if (C.terminal.includes(body.status)) { footer.textContent = C.final; return; }
    }
    const after = parseInt(response.headers.get("Retry-After") || "", 10);
    if (after > 0) seconds = after;
    footer.textContent = C.updating;
  } catch (error) {
    footer.textContent = C.offline;
  }
  schedule(seconds);
}
async function verify(event) {
  event.preventDefault();
  const form = event.currentTarget;
  form.querySelector("button").disabled = true;
  notice = C.verifyAsked;
  document.getElementById("verify-note").textContent = notice;
  try {
    const response = await fetch(form.action, {method: "POST", redirect: "manual", credentials: "omit"});
    const asked = response.type === "opaqueredirect" || response.ok;
    notice = asked ? C.verifyAccepted : C.verifyRefused.replace("{status}", String(response.status));
  } catch (error) {
    notice = C.offline;
  }
  lastText = null;
  const note = document.getElementById("verify-note");
  if (note) note.textContent = notice;
  poll();
}
const form = document.getElementById("verify");
if (form) form.addEventListener("submit", verify);
if (root.dataset.terminal !== "true") {
  footer.textContent = C.updating;
  schedule(parseInt(root.dataset.poll, 10) || 2);
}
})();
"""

TEXTS = {
    "updating": "This page updates itself.",
    "final": "This is the final state: the page no longer updates.",
    "offline": "certauth could not be reached just now: this page tries again.",
    "expiredLink": "This link has expired: ask your provider for a new one.",
    "verifyAsked": "Asking certauth to verify…",
    "verifyAccepted": "Verification requested: this page shows what it finds.",
    "verifyRefused": "The verification could not be requested now (HTTP {status}): the state above says why.",
}


def page_script() -> str:
    """The inline script, with the page's words and rules (constants only, no request or record data)."""
    config = {"automaticSteps": AUTOMATIC_STEPS, "manualSteps": MANUAL_STEPS, "states": STATES,
              "headlines": HEADLINES, "waiting": WAITING, "permissions": STEP_PERMISSIONS, "next": NEXT,
              "terminal": TERMINAL, "maxPoll": MAX_POLL_SECONDS, "needs": AUTOMATIC_NEEDS,
              "made": AUTOMATIC_MADE, **TEXTS}
    # Inside <script>, "</" would end it: JSON's \\u003c keeps any "<" out of the markup.
    return SCRIPT % json.dumps(config).replace("<", "\\u003c")


def progress_page(body: dict, custom: dict, token: str) -> func.HttpResponse:
    """The whole page for one onboarding's status body."""
    status = body.get("status") or "pending"
    terminal = status in TERMINAL
    quoted = quote(token, safe="")
    # Relative URLs: the page, its actions and the status URL share one origin and path (…/onboardings/{id}/).
    script_url, verify_url, status_url = (f"view/script?token={quoted}", f"view/verify?token={quoted}",
                                          f"status?token={quoted}")
    seconds = poll_seconds(body, custom)
    mailbox = body.get("serviceMailbox")
    method = "manual" if body.get("method") == "manual" else "automatic"
    header = (f'<h1>certauth onboarding</h1><p class="muted">Tenant <code id="tenant">{escape(body.get("tenantId"))}'
              f'</code>, service mailbox <code id="mailbox">{escape(mailbox)}</code>, {method} method.</p>')
    view = (f'<div id="progress" data-lifecycle="{escape(status)}" data-terminal="{str(terminal).lower()}" '
            f'data-poll="{seconds}" data-status-url="{escape(status_url)}" data-script-url="{escape(script_url)}" '
            f'data-verify-url="{escape(verify_url)}">{render_view(body, script_url, verify_url)}</div>')
    footer = ('<p class="visually-hidden" id="announce" role="status" aria-live="polite"></p>'
              f'<p class="muted" id="updates">{escape(TEXTS["final"] if terminal else "")}</p>')
    if not terminal:
        footer += f'<noscript><p class="muted">This page reloads every {seconds} seconds.</p></noscript>'
    head = "" if terminal else f'<noscript><meta http-equiv="refresh" content="{seconds}"></noscript>'
    title = f"Onboarding of {mailbox}" if mailbox else "Onboarding"
    return html_page(200, title, header + view + footer, nonce=new_nonce(), script=page_script(), head=head)


def _refused_token() -> func.HttpResponse:
    return message_page(403, "This link is not valid", STATUS_TOKEN_REFUSED)


def _no_onboarding() -> func.HttpResponse:
    return message_page(404, "No such onboarding", [
        "certauth has no record of this onboarding (any more). Ask your provider for a new link."])


# The manual method's refusals, in the administrator's words (the API's messages speak to the operator).
REFUSALS = {
    "NotFound": "certauth has no record of this onboarding (any more).",
    "NotManualOnboarding": "This onboarding uses the automatic method: there is no script to run and nothing to "
                           "verify.",
    "CertificateNotReady": "The script is not ready yet: it embeds the certificate, which certauth is still "
                           "making. Try again in a minute.",
    "NotWaitingForAdmin": "This onboarding is not waiting for the administrator now, so there is nothing to "
                          "verify: the progress page says where it stands.",
}


def _refusal_page(refused: ManualRefused, back: str) -> func.HttpResponse:
    return message_page(refused.status, "Not possible right now", [REFUSALS.get(refused.code, refused.message)],
                        links=[("Back to the progress page", back)], kind="warning")


def _view_url(req: func.HttpRequest, instance: str, token: str) -> str:
    return view_link(public_base(req, get_settings().public_base_url), instance, token)


@bp.route(route="onboardings/{id}/view", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handled_page(log)
async def view_onboarding(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The progress page of one onboarding, authorised by its status token."""
    instance = req.route_params.get("id", "")
    token = req.params.get("token") or ""
    if not await check_status_token(instance, token):
        return _refused_token()
    body, custom = await onboarding_status_body(req, client, instance)
    if body is None:
        return _no_onboarding()
    return progress_page(body, custom, token)


@bp.route(route="onboardings/{id}/view/script", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handled_page(log)
async def view_onboarding_script(req: func.HttpRequest) -> func.HttpResponse:
    """The manual method's script, downloaded from the progress page (the status token, not the function key)."""
    instance = req.route_params.get("id", "")
    token = req.params.get("token") or ""
    if not await check_status_token(instance, token):
        return _refused_token()
    try:
        return script_response(*await onboarding_script(req, instance))
    except ManualRefused as refused:
        return _refusal_page(refused, _view_url(req, instance, token))


@bp.route(route="onboardings/{id}/view/verify", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handled_page(log)
async def view_onboarding_verify(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The progress page's verify button: raise AdminVerified, then back to the page (303, the form's
    post-redirect-get; the page's script posts it too and only reads the answer's kind)."""
    instance = req.route_params.get("id", "")
    token = req.params.get("token") or ""
    if not await check_status_token(instance, token):
        return _refused_token()
    back = _view_url(req, instance, token)
    try:
        await request_verification(client, instance)
    except ManualRefused as refused:
        return _refusal_page(refused, back)
    return func.HttpResponse(status_code=303, headers={"Location": back, "Cache-Control": "no-store"})
