"""Entra ID, Microsoft Graph, Key Vault and Exchange Online's admin API, simulated over HTTPS on loopback.

`python -m sandbox.azure` serves it; :class:`Simulator` starts that process from Python (tests) and
talks to its admin API.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from sandbox import faketime
from sandbox.process import stop_group


class ConsentRefused(RuntimeError):
    """The admin-consent endpoint did not redirect back with admin_consent=True."""


def admin_consent(login_url: str, ca_bundle: str, tenant_id: str, client_id: str, redirect_uri: str,
                  state: str = "sandbox") -> str:
    """Play the customer's administrator on the admin-consent page (what an onboarding link leads to):
    follow `GET {login}/{tenant}/adminconsent` and return the redirect back, or raise ConsentRefused."""
    import urllib.error
    import urllib.parse

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=ca_bundle)))
    query = urllib.parse.urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "state": state})
    try:
        response = opener.open(f"{login_url.rstrip('/')}/{tenant_id}/adminconsent?{query}", timeout=30)
        code, location, body = response.status, "", response.read().decode(errors="replace")
    except urllib.error.HTTPError as answer:
        code, location, body = answer.code, answer.headers.get("Location", ""), answer.read().decode(errors="replace")
    if code != 302 or "admin_consent=True" not in location:
        raise ConsentRefused(f"admin consent was not granted: {code} {location or body[:300]}")
    return location


class Simulator:
    """Run `python -m sandbox.azure` as a child process; a context manager.

    Readiness is the JSON line the process prints once every origin listens; no polling."""

    def __init__(self, *args: str, state_dir: Path | str | None = None, start_timeout: float = 30.0,
                 tables_upstream: str | None = None) -> None:
        self.args = list(args)
        if tables_upstream:  # Azurite's Table endpoint or connection string: serve the tables/taskhub proxies
            self.args += ["--tables-upstream", tables_upstream]
        self.state_dir = Path(state_dir) if state_dir else None
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.info: dict = {}
        self._ssl: ssl.SSLContext | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Start the process and wait for its JSON line."""
        argv = [sys.executable, "-m", "sandbox.azure", *self.args]
        if self.state_dir is not None:
            argv += ["--state-dir", str(self.state_dir)]
        root = Path(__file__).resolve().parents[2]
        # The simulator owns the sandbox clock, so it reads real time even when its parent follows the clock.
        env = dict(faketime.without(), PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, cwd=root, env=env,
                                        start_new_session=True, text=True)
        line = self._read_line()
        self.info = json.loads(line)
        self._ssl = ssl.create_default_context(cafile=self.info["caBundle"])
        return self

    def _read_line(self) -> str:
        import selectors

        assert self.process
        assert self.process.stdout
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(self.start_timeout):
            self.stop()
            raise RuntimeError(f"sandbox.azure printed nothing within {self.start_timeout} s")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"sandbox.azure exited with {code} before it was ready")
        return line

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL if it lingers."""
        stop_group(self.process)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- admin API ------------------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        """Call an admin route (path below /_sandbox) and return its JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.info['adminUrl']}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self._ssl, timeout=timeout) as response:
            return json.loads(response.read())

    def advance_clock(self, seconds: float) -> dict:
        """Move the sandbox clock forward."""
        return self.admin("POST", "/clock", {"advanceSeconds": seconds})

    def set_faults(self, rules: list[dict] | None = None, replication_delay: dict | None = None) -> dict:
        """Replace the fault rules and replication delays."""
        return self.admin("PUT", "/faults", {"rules": rules or [], "replicationDelay": replication_delay or {}})

    def add_faults(self, rules: list[dict]) -> dict:
        """Add fault rules after the active ones."""
        return self.admin("POST", "/faults", {"rules": rules})

    # -- hold points: stop a request at an exact call, let it go when the test says so ------------------
    def hold(self, name: str, origin: str = "*", method: str = "*", path: str = "", count: int = 1,
             skip: int = 0) -> dict:
        """Add a hold rule: after `skip` matching requests went through, the next `count` requests matching
        origin / method / path (a regular expression searched in the path and query) are parked before they
        are handled, until :meth:`release`."""
        return self.add_faults([{"hold": name, "origin": origin, "method": method, "path": path, "count": count,
                                 "skip": skip}])

    def wait_held(self, name: str, timeout: float = 30, count: int = 1) -> list[dict]:
        """Wait until `count` requests are parked at hold point `name`; the parked requests (origin, method,
        path). Raises TimeoutError when they are not parked within `timeout` seconds."""
        import urllib.error

        try:
            return self.admin("POST", f"/holds/{name}/wait", {"timeout": timeout, "count": count},
                              timeout=timeout + 30)["held"]
        except urllib.error.HTTPError as error:
            if error.code == 408:
                raise TimeoutError(f"no request held at {name!r} within {timeout} s") from None
            raise

    def release(self, name: str, status: int | None = None) -> int:
        """Let the requests parked at `name` proceed, or fail with `status`; how many were released."""
        return self.admin("POST", f"/holds/{name}/release", {} if status is None else {"status": status})["released"]

    def grant(self, tenant_id: str, roles: list[str], principal: str = "provisioner",
              resource_app_id: str = "00000003-0000-0000-c000-000000000000") -> dict:
        """Set the app roles a seeded principal holds on a resource."""
        return self.admin("PUT", f"/tenants/{tenant_id}/grants",
                          {"principal": principal, "resourceAppId": resource_app_id, "roles": roles})

    def set_app_management_policy(self, tenant_id: str, policy: dict | None) -> dict:
        """Configure the tenant's default app management policy (Graph's tenantAppManagementPolicy JSON, e.g.
        applicationRestrictions.keyCredentials with an asymmetricKeyLifetime); None restores Graph's default
        (disabled, no restrictions). Returns the policy as Graph now answers it."""
        path = f"/tenants/{tenant_id}/appManagementPolicy"
        return self.admin("DELETE", path) if policy is None else self.admin("PUT", path, policy)

    def app_management_policy(self, tenant_id: str) -> dict:
        """The tenant's default app management policy, as Graph answers it."""
        return self.admin("GET", f"/tenants/{tenant_id}/appManagementPolicy")

    def tenant_state(self, tenant_id: str) -> dict:
        """Objects and counts in a tenant."""
        return self.admin("GET", f"/tenants/{tenant_id}")

    def requests_since(self, index: int = 0) -> dict:
        """Requests the simulator served since `index`."""
        return self.admin("GET", f"/requests?since={index}")

    def consent(self, tenant_id: str, state: str = "sandbox") -> str:
        """The tenant's administrator consents to the product's onboarding app (the home consentApp)."""
        app = self.home["consentApp"]
        return admin_consent(self.info["loginUrl"], self.info["caBundle"], tenant_id, app["clientId"],
                             app["redirectUri"], state)

    def consent_verifier(self, tenant_id: str, state: str = "sandbox") -> str:
        """The tenant's administrator consents to the product's verifier (the home verifierApp): its service
        principal there holds exactly Application.Read.All and Organization.Read.All on Microsoft Graph."""
        app = self.home["verifierApp"]
        return admin_consent(self.info["loginUrl"], self.info["caBundle"], tenant_id, app["clientId"],
                             app["redirectUri"], state)

    @property
    def home(self) -> dict:
        """The home tenant's description (the product's own tenant: the vault lives there)."""
        return next(t for t in self.info["tenants"] if t["home"])
