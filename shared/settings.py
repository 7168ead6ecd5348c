"""Typed settings, read once from the environment (Function App application settings).

Nothing here runs at import time: call :func:`get_settings` when a value is needed. The result is cached
for the life of the worker; tests change the environment and call ``get_settings.cache_clear()``.

This module must not import ``azure.functions`` (``shared/`` is host-agnostic).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

__all__ = ["DEFAULT_APP_DISPLAY_NAME_PREFIX", "ENV_NAMES", "Settings", "SettingsError", "get_settings"]

# "Itrezzo, EN DASH, certificate-based authorization, EN DASH" (the dashes are U+2013, written as escapes
# so that no confusable character hides in the source).
DEFAULT_APP_DISPLAY_NAME_PREFIX = "Itrezzo \u2013 certificate-based authorization \u2013"

# Field name → environment variable (application setting) it is read from.
ENV_NAMES: Mapping[str, str] = {
    "graph_base_url": "GRAPH_BASE_URL",
    "authority_host": "AZURE_AUTHORITY_HOST",
    "key_vault_url": "KEY_VAULT_URL",
    "tables_connection": "TABLES_CONNECTION_STRING",  # falls back to AzureWebJobsStorage
    # Identity-based storage (no key): falls back to AzureWebJobsStorage__tableServiceUri / __accountName.
    "tables_endpoint": "TABLES_ENDPOINT",
    "home_tenant_id": "CERTAUTH_HOME_TENANT_ID",
    "app_display_name_prefix": "CERTAUTH_APP_NAME_PREFIX",
    "keyvault_verify_challenge_resource": "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE",
    "managed_identity_client_id": "AZURE_CLIENT_ID",
    "taskhub": "TASKHUB_NAME",
    "provisioner_client_id": "CERTAUTH_PROVISIONER_CLIENT_ID",
    "instance_discovery": "AZURE_INSTANCE_DISCOVERY",
    "graph_resource": "GRAPH_RESOURCE",
    "exchange_resource": "EXCHANGE_RESOURCE",
    "exchange_admin_url": "EXCHANGE_ADMIN_URL",
    "token_exchange_audience": "TOKEN_EXCHANGE_AUDIENCE",
    "public_base_url": "CERTAUTH_PUBLIC_BASE_URL",
    "signing_key_secret": "CERTAUTH_SIGNING_KEY_SECRET",
    "signing_key_vault_url": "CERTAUTH_SIGNING_KEY_VAULT_URL",  # falls back to KEY_VAULT_URL
    "status_token_days": "CERTAUTH_STATUS_TOKEN_DAYS",
    "allow_exportable_keys": "CERTAUTH_ALLOW_EXPORTABLE_KEYS",
    "verifier_client_id": "CERTAUTH_VERIFIER_CLIENT_ID",
    "manual_poll_minutes": "CERTAUTH_MANUAL_POLL_MINUTES",
    "manual_deadline_days": "CERTAUTH_MANUAL_DEADLINE_DAYS",
    "rotation_grace_hours": "CERTAUTH_ROTATION_GRACE_HOURS",
    "alert_webhook_url": "CERTAUTH_ALERT_WEBHOOK_URL",
    "alert_webhook_format": "CERTAUTH_ALERT_WEBHOOK_FORMAT",
    "alert_mail_from": "CERTAUTH_ALERT_MAIL_FROM",
    "alert_mail_to": "CERTAUTH_ALERT_MAIL_TO",
    "alert_thresholds_days": "CERTAUTH_ALERT_THRESHOLDS_DAYS",
    "rotate_before_days": "CERTAUTH_ROTATE_BEFORE_DAYS",
    "rotations_per_run": "CERTAUTH_ROTATIONS_PER_RUN",
    "history_retention_days": "CERTAUTH_HISTORY_RETENTION_DAYS",
    "audit_retention_days": "CERTAUTH_AUDIT_RETENTION_DAYS",
}
_BOOLEAN_FIELDS = frozenset({"keyvault_verify_challenge_resource", "instance_discovery", "allow_exportable_keys"})
_INTEGER_FIELDS = frozenset({"status_token_days", "manual_poll_minutes", "manual_deadline_days",
                             "rotation_grace_hours", "rotate_before_days", "rotations_per_run",
                             "history_retention_days", "audit_retention_days"})
# Comma-separated whole numbers of days (CERTAUTH_ALERT_THRESHOLDS_DAYS), kept largest first.
_DAY_LIST_FIELDS = frozenset({"alert_thresholds_days"})
MAX_ALERT_THRESHOLD_DAYS = 365
MAX_RETENTION_DAYS = 3650
MAX_ROTATIONS_PER_RUN = 1000
# Key Vault object names (learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates).
_VAULT_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_STATUS_TOKEN_DAYS = 365
# The manual method's wait for the admin: a poll at least every day, a deadline of at most a year.
MAX_MANUAL_POLL_MINUTES = 1440
MAX_MANUAL_DEADLINE_DAYS = 365
# A rotation's grace period: the old key outlives the new one's proof by at most a month.
MAX_ROTATION_GRACE_HOURS = 720
TABLES_CONNECTION_FALLBACK = "AzureWebJobsStorage"
ALERT_WEBHOOK_FORMATS = ("json", "teams")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A setting is missing or malformed. The message names the application setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    authority_host: str = "https://login.microsoftonline.com"
    key_vault_url: str | None = None
    tables_connection: str | None = field(default=None, repr=False)  # may hold an account key
    tables_endpoint: str | None = None
    home_tenant_id: str | None = None
    app_display_name_prefix: str = DEFAULT_APP_DISPLAY_NAME_PREFIX
    keyvault_verify_challenge_resource: bool = True
    managed_identity_client_id: str | None = None
    taskhub: str = "certauth"
    # The product's multi-tenant app registration that customers consent to; it trusts the Function App's
    # managed identity through a federated credential, so the product holds no secret.
    provisioner_client_id: str | None = None
    # MSAL's authority validation against the public cloud's instance metadata; off only for an authority that
    # metadata cannot know (Azure Stack Hub, AD FS, a private authority host). azure-identity's
    # disable_instance_discovery.
    instance_discovery: bool = True
    # Token audiences differ per cloud (learn.microsoft.com/graph/deployments;
    # learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity):
    # e.g. https://graph.microsoft.us, https://outlook.office365.us and api://AzureADTokenExchangeUSGov in US Gov.
    graph_resource: str = "https://graph.microsoft.com"
    exchange_resource: str = "https://outlook.office365.com"
    # Exchange Online's admin API, for the Exchange proof (the origin of /adminapi/beta/{tenant}/InvokeCommand), e.g.
    # https://outlook.office365.us in US Gov. Only the address: the token scope is always exchange_resource.
    exchange_admin_url: str = "https://outlook.office365.com"
    token_exchange_audience: str = "api://AzureADTokenExchange"
    # The public root of the product's URLs (API Management, a custom domain), e.g. https://api.contoso.com:
    # status links are {public_base_url}/api/onboardings/... Unset: a 202's Location follows the request's URL.
    public_base_url: str | None = None
    # The Key Vault secret whose versions sign capability URLs (status tokens, later onboarding links).
    signing_key_secret: str = "certauth-signing-key"
    # The vault holding that secret; unset: KEY_VAULT_URL. On Azure a vault of its own, so that a consumer of
    # exportable certificates (Key Vault Secrets User on the certificates' vault) cannot read the key.
    signing_key_vault_url: str | None = None
    status_token_days: int = 30
    # Exportable private keys (a PFX in the vault) are opt-in for the operator, not for any caller.
    allow_exportable_keys: bool = False
    # The manual method's read-only verifier (Application.Read.All, Organization.Read.All): the product's second
    # multi-tenant app, federated with the managed identity like the onboarding app.
    verifier_client_id: str | None = None
    # How often the manual method checks the tenant by itself while it waits for the admin, and for how long.
    manual_poll_minutes: int = 10
    manual_deadline_days: int = 7
    # The expiry monitor (its schedule is the binding expression %CERTAUTH_EXPIRY_SCHEDULE%, read by the host): an
    # alert when a certificate comes within each of these days of its notAfter, largest first; a rotation from
    # rotate_before_days (0 = off); Durable history and audit entries kept for these many days.
    alert_thresholds_days: tuple[int, ...] = (30, 14, 7, 3, 1)
    rotate_before_days: int = 30
    # At most this many rotations start per run (the rest stay due for the next run): Key Vault creates at most 20
    # software RSA certificates per 10 s per vault (learn.microsoft.com/azure/key-vault/general/service-limits).
    rotations_per_run: int = 20
    history_retention_days: int = 90
    audit_retention_days: int = 400
    # How long a rotation keeps the old key on the app after the new one is proven, so running clients pick it up.
    rotation_grace_hours: int = 24
    # Alert sinks. The webhook URL bears a secret (a Logic App trigger's sig=): never in repr, logs or records; it
    # may be a Key Vault reference, which the platform resolves into the setting.
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_format: str = "json"  # json | teams
    alert_mail_from: str | None = None
    alert_mail_to: str | None = None  # comma-separated addresses

    def __post_init__(self) -> None:
        for name in ("graph_base_url", "authority_host", "key_vault_url", "signing_key_vault_url", "public_base_url",
                     "exchange_admin_url"):
            value = getattr(self, name)
            if value is None:
                continue
            # Local development (`func start`) serves http on loopback, where Entra accepts http redirect URIs too.
            _check_https(name, value, loopback_http=name == "public_base_url")
            # One canonical form: no trailing slash ("https://graph.microsoft.com/v1.0").
            object.__setattr__(self, name, value.rstrip("/"))
        if self.signing_key_vault_url is None:
            object.__setattr__(self, "signing_key_vault_url", self.key_vault_url)
        if not self.taskhub:
            raise SettingsError(f"{ENV_NAMES['taskhub']} must not be empty")
        if not self.app_display_name_prefix.strip():
            raise SettingsError(f"{ENV_NAMES['app_display_name_prefix']} must not be blank")
        if not _VAULT_NAME.match(self.signing_key_secret or ""):
            raise SettingsError(f"{ENV_NAMES['signing_key_secret']} must be a Key Vault name (1-127 of 0-9 a-z A-Z -), "
                                f"got {self.signing_key_secret!r}")
        if not isinstance(self.status_token_days, int) or not 1 <= self.status_token_days <= MAX_STATUS_TOKEN_DAYS:
            raise SettingsError(f"{ENV_NAMES['status_token_days']} must be a whole number of days from 1 to "
                                f"{MAX_STATUS_TOKEN_DAYS}, got {self.status_token_days!r}")
        for name, most, unit in (("manual_poll_minutes", MAX_MANUAL_POLL_MINUTES, "minutes"),
                                 ("manual_deadline_days", MAX_MANUAL_DEADLINE_DAYS, "days")):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= most:
                raise SettingsError(f"{ENV_NAMES[name]} must be a whole number of {unit} from 1 to {most}, "
                                    f"got {value!r}")
        _check_expiry_settings(self)
        grace = self.rotation_grace_hours
        if not isinstance(grace, int) or not 0 <= grace <= MAX_ROTATION_GRACE_HOURS:
            raise SettingsError(f"{ENV_NAMES['rotation_grace_hours']} must be a whole number of hours from 0 to "
                                f"{MAX_ROTATION_GRACE_HOURS}, got {self.rotation_grace_hours!r}")

        if self.alert_webhook_format not in ALERT_WEBHOOK_FORMATS:
            raise SettingsError(f"{ENV_NAMES['alert_webhook_format']} must be one of "
                                f"{', '.join(ALERT_WEBHOOK_FORMATS)}, got {self.alert_webhook_format!r}")
        if self.alert_webhook_url is not None:
            _check_webhook_url(self.alert_webhook_url)

    @property
    def alert_mail_recipients(self) -> list[str]:
        """CERTAUTH_ALERT_MAIL_TO as a list of addresses."""
        return [address.strip() for address in (self.alert_mail_to or "").split(",") if address.strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``). Empty values count as unset."""
        env = os.environ if environ is None else environ

        def get(field_name: str) -> str | None:
            raw = env.get(ENV_NAMES[field_name])
            if raw is None:
                return None
            raw = raw.strip()
            return raw or None

        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name in _BOOLEAN_FIELDS:
                raw = get(f.name)
                if raw is not None:
                    values[f.name] = _parse_bool(ENV_NAMES[f.name], raw)
                continue
            if f.name in _DAY_LIST_FIELDS:
                raw = get(f.name)
                if raw is not None:
                    values[f.name] = tuple(_parse_int(ENV_NAMES[f.name], part.strip()) for part in raw.split(","))
                continue
            if f.name in _INTEGER_FIELDS:
                raw = get(f.name)
                if raw is not None:
                    values[f.name] = _parse_int(ENV_NAMES[f.name], raw)
                continue
            value = get(f.name)
            if f.name == "tables_connection" and value is None:
                value = (env.get(TABLES_CONNECTION_FALLBACK) or "").strip() or None
            if f.name == "tables_endpoint" and value is None:
                value = _identity_storage_endpoint(env)
            if value is not None:
                values[f.name] = value
        return cls(**values)  # type: ignore[arg-type]

    def require(self, field_name: str) -> str:
        """The value of an optional string setting that the caller cannot do without.

        ``get_settings().require("key_vault_url")`` raises :class:`SettingsError` naming the
        application setting when it is unset.
        """
        if field_name not in ENV_NAMES:
            raise KeyError(field_name)
        value = getattr(self, field_name)
        if value is None or value == "":
            hint = ENV_NAMES[field_name]
            if field_name == "tables_connection":
                hint += f" (or {TABLES_CONNECTION_FALLBACK})"
            if field_name == "signing_key_vault_url":
                hint += f" (or {ENV_NAMES['key_vault_url']})"
            raise SettingsError(f"application setting {hint} is required but not set")
        if not isinstance(value, str):
            raise TypeError(f"{field_name} is not a string setting")
        return value

    @property
    def graph_host(self) -> str:
        """Host name of the Graph endpoint, without port (msgraph-sdk's ``allowed_hosts`` compares host
        names), e.g. ``graph.microsoft.com``."""
        return urlsplit(self.graph_base_url).hostname or ""


def _identity_storage_endpoint(env: Mapping[str, str]) -> str | None:
    """The Table endpoint of identity-based AzureWebJobsStorage (learn.microsoft.com/azure/azure-functions/
    functions-reference#connecting-to-host-storage-with-an-identity): __tableServiceUri, or the account
    name in the public cloud."""
    uri = (env.get(f"{TABLES_CONNECTION_FALLBACK}__tableServiceUri") or "").strip()
    if uri:
        return uri
    account = (env.get(f"{TABLES_CONNECTION_FALLBACK}__accountName") or "").strip()
    return f"https://{account}.table.core.windows.net" if account else None


def _check_expiry_settings(settings: Settings) -> None:
    """The expiry monitor's thresholds (distinct, 1-365 days; kept largest first), rotation lead and retentions."""
    thresholds = settings.alert_thresholds_days
    if (not thresholds or len(set(thresholds)) != len(thresholds)
            or not all(isinstance(d, int) and 1 <= d <= MAX_ALERT_THRESHOLD_DAYS for d in thresholds)):
        raise SettingsError(f"{ENV_NAMES['alert_thresholds_days']} must be distinct whole numbers of days from 1 to "
                            f"{MAX_ALERT_THRESHOLD_DAYS}, comma-separated, got {thresholds!r}")
    object.__setattr__(settings, "alert_thresholds_days", tuple(sorted(thresholds, reverse=True)))
    for name in ("rotate_before_days", "history_retention_days", "audit_retention_days"):
        value, least = getattr(settings, name), 0 if name == "rotate_before_days" else 1
        if not isinstance(value, int) or not least <= value <= MAX_RETENTION_DAYS:
            raise SettingsError(f"{ENV_NAMES[name]} must be a whole number of days from {least} to "
                                f"{MAX_RETENTION_DAYS}, got {value!r}")
    if not isinstance(settings.rotations_per_run, int) or not 1 <= settings.rotations_per_run <= MAX_ROTATIONS_PER_RUN:
        raise SettingsError(f"{ENV_NAMES['rotations_per_run']} must be a whole number from 1 to "
                            f"{MAX_ROTATIONS_PER_RUN}, got {settings.rotations_per_run!r}")


def _check_https(field_name: str, value: str, *, loopback_http: bool = False) -> None:
    parts = urlsplit(value)
    local = loopback_http and parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.netloc or not (parts.scheme == "https" or local):
        allowed = " (http only to localhost)" if loopback_http else ""
        raise SettingsError(f"{ENV_NAMES[field_name]} must be an https:// URL{allowed}, got {value!r}")


def _check_webhook_url(value: str) -> None:
    """https, or http to this machine only; the message never repeats the URL (its query holds a signature)."""
    parts = urlsplit(value)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.netloc or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise SettingsError(f"{ENV_NAMES['alert_webhook_url']} must be an https:// URL (http only to localhost)")


def _parse_bool(env_name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{env_name} must be true or false, got {raw!r}")


def _parse_int(env_name: str, raw: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise SettingsError(f"{env_name} must be a whole number, got {raw!r}")
    return int(raw)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first call and cached."""
    return Settings.from_env()
