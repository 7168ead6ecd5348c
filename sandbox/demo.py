"""``python -m sandbox.demo``: one automatic onboarding against the running offline world (``make demo``).

Reads ``endpoints.json`` written by ``python -m sandbox.up up`` (``$SANDBOX_STATE_DIR`` or ``.sandbox/``),
plays the customer's administrator consenting to the product's onboarding app, POSTs an onboarding for the
first customer (non-home) tenant, follows its status URL printing each step as it changes, then prints what
was created.  Exits 0 only when the onboarding completed.  Starts and stops nothing itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import requests

from sandbox.azure import ConsentRefused, admin_consent

REPO = Path(__file__).resolve().parent.parent
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}


class DemoError(RuntimeError):
    pass


def endpoints_path() -> Path:
    return Path(os.environ.get("SANDBOX_STATE_DIR") or REPO / ".sandbox") / "endpoints.json"


def load_endpoints(path: Path | None = None) -> dict:
    path = path or endpoints_path()
    if not path.exists():
        raise DemoError(f"{path} not found: start the offline world first (make up)")
    return json.loads(path.read_text())


class Demo:
    def __init__(self, endpoints: dict, out: TextIO = sys.stdout, poll_interval: float = 0.1,
                 timeout: float = 90.0) -> None:
        self.endpoints = endpoints
        self.out = out
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.http = requests.Session()
        # Everything is on loopback: no proxies, and the simulator's CA bundle for https.  Without
        # trust_env=False, a REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment would silently take
        # precedence over Session.verify (requests merges the environment over session settings).
        self.http.trust_env = False
        self.http.verify = endpoints["caBundle"]
        self.host = endpoints["host"]["baseUrl"].rstrip("/")
        self.http.headers["x-functions-key"] = endpoints["host"]["functionKey"]
        self.started = time.monotonic()

    # -- output -------------------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def log(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:6.2f}s] {text}")

    # -- the steps ----------------------------------------------------------------------------------------

    def tenants(self) -> tuple[dict, dict]:
        tenants = self.endpoints.get("tenants") or []
        home = next((t for t in tenants if t.get("home")), None)
        customer = next((t for t in tenants if not t.get("home")), None)
        if home is None or "consentApp" not in home:
            raise DemoError("endpoints.json has no home tenant with the product's onboarding app (consentApp)")
        if customer is None:
            raise DemoError("endpoints.json has no customer (non-home) tenant")
        return home, customer

    def consent(self, home: dict, customer: dict) -> str:
        """The customer's administrator accepts the admin-consent page for the product's onboarding app."""
        app = home["consentApp"]
        try:
            return admin_consent(self.endpoints["simulator"]["loginUrl"], self.endpoints["caBundle"],
                                 customer["tenantId"], app["clientId"], app["redirectUri"], state="demo")
        except ConsentRefused as refused:
            raise DemoError(str(refused)) from None

    def start(self, customer: dict, mailbox: str) -> dict:
        response = self.http.post(f"{self.host}/api/onboardings",
                                  json={"tenantId": customer["tenantId"], "serviceMailbox": mailbox}, timeout=30)
        if response.status_code != 202:
            raise DemoError(f"POST /api/onboardings answered {response.status_code}: {response.text}")
        started = response.json()
        # The long-running-operation contract: poll the Location of the 202 (its body names the same URL).
        started["statusUrl"] = response.headers.get("Location") or started.get("statusQueryGetUri")
        return started

    def follow(self, status_url: str) -> dict:
        """Poll the status URL until the onboarding ends (or the timeout), printing each step change."""
        deadline = time.monotonic() + self.timeout
        seen: tuple | None = None
        status: dict = {}
        while True:
            response = self.http.get(status_url, timeout=30)
            # 202 while the onboarding runs, 200 once it has ended (500 for a failure, if the URL asks for it).
            if response.status_code not in (200, 202, 500) or "json" not in response.headers.get("Content-Type", ""):
                raise DemoError(f"GET {_shown(status_url)} answered {response.status_code}: {response.text}")
            status = response.json()
            if response.status_code == 500 and "error" in status and "runtimeStatus" not in status:
                raise DemoError(f"the onboarding failed: {json.dumps(status['error'])}")
            current = (status.get("runtimeStatus"), status.get("step"))
            if current != seen:
                self.log(f"{status.get('runtimeStatus') or '-':<10} step: {status.get('step') or '-'}")
                seen = current
            if status.get("runtimeStatus") in TERMINAL:
                return status
            if time.monotonic() >= deadline:
                raise DemoError(f"the onboarding did not finish within {self.timeout:g}s "
                                f"(last: {status.get('runtimeStatus')}, step {status.get('step')})")
            time.sleep(self.poll_interval)

    # -- the summary --------------------------------------------------------------------------------------

    def summary(self, status: dict, customer: dict) -> None:
        application = status.get("application") or {}
        certificate = status.get("certificate") or {}
        rows: list[tuple[str, str]] = [
            ("tenant", f"{customer['tenantId']} ({customer.get('domain', '')})"),
            ("service mailbox", status.get("serviceMailbox") or ""),
            ("onboarding id", status.get("id") or ""),
            ("app id", application.get("appId") or "-"),
            ("application object id", application.get("objectId") or "-"),
            ("service principal id", status.get("servicePrincipalId") or "-"),
            ("certificate", certificate.get("name") or "-"),
            ("  thumbprint (SHA-1)", certificate.get("thumbprint") or "-"),
            ("  notAfter", certificate.get("notAfter") or "-"),
        ]
        permissions = status.get("permissions") or []
        rows += [("granted permissions" if i == 0 else "", p) for i, p in enumerate(permissions)] or [
            ("granted permissions", "-")]
        rows.append(("directory role", status.get("directoryRole") or "-"))
        if status.get("permissionProfile"):
            rows.append(("permission profile", status["permissionProfile"]))
        proof = status.get("proofRoles") or {}
        first = True
        for resource, roles in proof.items():
            rows.append(("proof token roles" if first else "", f"{resource}: {', '.join(sorted(roles))}"))
            first = False
        if first:
            rows.append(("proof token roles", "-"))
        width = max(len(label) for label, _ in rows)
        self.say("")
        self.say("What was created")
        self.say("-" * 16)
        for label, value in rows:
            self.say(f"  {label:<{width}}  {value}")
        self.say("")

    def failure(self, status: dict) -> None:
        error = status.get("error") or {}
        self.say("")
        self.say(f"Onboarding ended {status.get('runtimeStatus')} at step {status.get('step')}")
        if error:
            self.say(f"  error: {json.dumps(error)}")
        if status.get("created"):
            self.say(f"  already created: {json.dumps(status['created'])}")

    # -- all of it ----------------------------------------------------------------------------------------

    def run(self, mailbox: str | None = None) -> int:
        home, customer = self.tenants()
        mailbox = mailbox or f"contact-sync@{customer.get('domain') or 'contoso.com'}"
        self.say(f"certauth demo: automatic onboarding of {mailbox} in tenant {customer['tenantId']}")
        self.say(f"  product host {self.host}, home tenant {home['tenantId']}")
        self.log("the customer's administrator consents (the onboarding link will do this)")
        self.consent(home, customer)
        self.log(f"admin consent granted to the onboarding app {home['consentApp']['clientId']}")
        started = self.start(customer, mailbox)
        self.log(f"POST /api/onboardings -> 202, id {started['id']}")
        self.log(f"following {_shown(started['statusUrl'])} (the Location of the 202)")
        status = self.follow(started["statusUrl"])
        if status.get("runtimeStatus") != "Completed" or status.get("status") != "completed":
            self.failure(status)
            return 1
        self.log(f"onboarding completed in {time.monotonic() - self.started:.2f}s")
        self.summary(status, customer)
        return 0


def _shown(url: str) -> str:
    """A status URL as printed: without its query (the per-instance token stays with the caller)."""
    return url.split("?", 1)[0]


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--mailbox", help="service mailbox (default contact-sync@<customer tenant domain>)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the onboarding")
    parser.add_argument("--endpoints", type=Path, help="endpoints.json (default from SANDBOX_STATE_DIR)")
    args = parser.parse_args(argv)
    try:
        return Demo(load_endpoints(args.endpoints), out=out, timeout=args.timeout).run(args.mailbox)
    except (DemoError, requests.RequestException) as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
