"""shared.settings: defaults, environment names, validation and caching."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import DEFAULT_APP_DISPLAY_NAME_PREFIX, ENV_NAMES, Settings, SettingsError, get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_ENV = [*ENV_NAMES.values(), "AzureWebJobsStorage"]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment for settings, and a fresh cache before and after."""
    for name in ALL_ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_defaults(env: pytest.MonkeyPatch) -> None:
    s = get_settings()
    assert s.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.key_vault_url is None
    assert s.tables_connection is None
    assert s.home_tenant_id is None
    assert s.app_display_name_prefix == "Itrezzo \u2013 certificate-based authorization \u2013"
    assert s.app_display_name_prefix == DEFAULT_APP_DISPLAY_NAME_PREFIX
    assert s.keyvault_verify_challenge_resource is True
    assert s.managed_identity_client_id is None
    assert s.taskhub == "certauth"
    assert s.graph_host == "graph.microsoft.com"


def test_reads_every_setting_from_its_env_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("GRAPH_BASE_URL", "https://127.0.0.1:8443/v1.0/")
    env.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/")
    env.setenv("KEY_VAULT_URL", "https://kv-certauth.vault.azure.net/")
    env.setenv("TABLES_CONNECTION_STRING", "UseDevelopmentStorage=true")
    env.setenv("CERTAUTH_HOME_TENANT_ID", "11111111-2222-3333-4444-555555555555")
    env.setenv("CERTAUTH_APP_NAME_PREFIX", "Contoso \u2013 cba \u2013")
    env.setenv("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "false")
    env.setenv("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000")
    env.setenv("TASKHUB_NAME", "certauthtest")
    s = get_settings()
    assert s == Settings(
        graph_base_url="https://127.0.0.1:8443/v1.0",
        authority_host="https://login.microsoftonline.us",
        key_vault_url="https://kv-certauth.vault.azure.net",
        tables_connection="UseDevelopmentStorage=true",
        home_tenant_id="11111111-2222-3333-4444-555555555555",
        app_display_name_prefix="Contoso \u2013 cba \u2013",
        keyvault_verify_challenge_resource=False,
        managed_identity_client_id="66666666-7777-8888-9999-000000000000",
        taskhub="certauthtest",
    )
    assert s.graph_host == "127.0.0.1"


def test_every_field_has_an_env_name() -> None:
    assert {f.name for f in dataclasses.fields(Settings)} == set(ENV_NAMES)


def test_tables_connection_falls_back_to_azurewebjobsstorage(env: pytest.MonkeyPatch) -> None:
    env.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    assert get_settings().tables_connection == "UseDevelopmentStorage=true"
    get_settings.cache_clear()
    env.setenv("TABLES_CONNECTION_STRING", "DefaultEndpointsProtocol=https;AccountName=x")
    assert get_settings().tables_connection == "DefaultEndpointsProtocol=https;AccountName=x"


def test_empty_values_count_as_unset(env: pytest.MonkeyPatch) -> None:
    # local.settings.json often carries "" for settings not in use.
    for name in ENV_NAMES.values():
        env.setenv(name, "  ")
    s = get_settings()
    assert s == Settings()


@pytest.mark.parametrize("name", ["GRAPH_BASE_URL", "AZURE_AUTHORITY_HOST", "KEY_VAULT_URL"])
@pytest.mark.parametrize("value", ["http://graph.example", "graph.microsoft.com/v1.0", "https://", "ftp://x"])
def test_urls_must_be_https(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        get_settings()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("true", True), ("True", True), ("1", True), ("yes", True), ("on", True)],
        *[("false", False), ("FALSE", False), ("0", False), ("no", False), ("off", False)],
    ],
)
def test_bool_parsing(env: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    env.setenv("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", raw)
    assert get_settings().keyvault_verify_challenge_resource is expected


def test_bad_bool_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "maybe")
    with pytest.raises(SettingsError, match="KEY_VAULT_VERIFY_CHALLENGE_RESOURCE"):
        get_settings()


def test_cached_until_cleared(env: pytest.MonkeyPatch) -> None:
    env.setenv("TASKHUB_NAME", "first")
    first = get_settings()
    env.setenv("TASKHUB_NAME", "second")
    assert get_settings() is first
    assert get_settings().taskhub == "first"
    get_settings.cache_clear()
    assert get_settings().taskhub == "second"


def test_frozen(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_settings().taskhub = "other"  # type: ignore[misc]


def test_require_names_the_missing_setting(env: pytest.MonkeyPatch) -> None:
    s = get_settings()
    with pytest.raises(SettingsError, match="KEY_VAULT_URL"):
        s.require("key_vault_url")
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        s.require("tables_connection")
    get_settings.cache_clear()
    env.setenv("KEY_VAULT_URL", "https://kv.vault.azure.net")
    assert get_settings().require("key_vault_url") == "https://kv.vault.azure.net"


def test_from_env_takes_an_explicit_mapping() -> None:
    s = Settings.from_env({"TASKHUB_NAME": "hub2", "KEY_VAULT_URL": "https://kv.example"})
    assert s.taskhub == "hub2"
    assert s.key_vault_url == "https://kv.example"


def test_import_has_no_side_effects() -> None:
    """No azure.functions import and no settings read at import time (fresh interpreter)."""
    code = (
        "import sys, shared.settings as s; "
        "assert 'azure.functions' not in sys.modules, 'azure.functions imported'; "
        "assert s.get_settings.cache_info().currsize == 0, 'settings read at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_identity_based_storage_gives_the_table_endpoint() -> None:
    from shared.settings import Settings

    by_account = Settings.from_env({"AzureWebJobsStorage__accountName": "certauthprod"})
    assert by_account.tables_connection is None
    assert by_account.tables_endpoint == "https://certauthprod.table.core.windows.net"
    by_uri = Settings.from_env({"AzureWebJobsStorage__tableServiceUri": "https://x.table.core.usgovcloudapi.net"})
    assert by_uri.tables_endpoint == "https://x.table.core.usgovcloudapi.net"
    assert Settings.from_env({"TABLES_ENDPOINT": "https://y.table.core.windows.net"}).tables_endpoint == \
        "https://y.table.core.windows.net"


def test_the_storage_connection_string_stays_out_of_repr() -> None:
    from shared.settings import Settings

    settings = Settings.from_env({"AzureWebJobsStorage": "AccountName=a;AccountKey=c2VjcmV0;"})
    assert "AccountKey" not in repr(settings)


def test_status_link_and_signing_settings(env: pytest.MonkeyPatch) -> None:
    s = get_settings()
    assert s.public_base_url is None
    assert s.signing_key_secret == "certauth-signing-key"
    assert s.status_token_days == 30
    assert s.allow_exportable_keys is False
    get_settings.cache_clear()
    env.setenv("CERTAUTH_PUBLIC_BASE_URL", "https://api.contoso.com/certauth/")
    env.setenv("CERTAUTH_SIGNING_KEY_SECRET", "contoso-links")
    env.setenv("CERTAUTH_STATUS_TOKEN_DAYS", "7")
    env.setenv("CERTAUTH_ALLOW_EXPORTABLE_KEYS", "true")
    s = get_settings()
    assert s.public_base_url == "https://api.contoso.com/certauth"
    assert (s.signing_key_secret, s.status_token_days, s.allow_exportable_keys) == ("contoso-links", 7, True)


@pytest.mark.parametrize(("name", "value"), [
    ("CERTAUTH_PUBLIC_BASE_URL", "http://api.contoso.com"), ("CERTAUTH_PUBLIC_BASE_URL", "api.contoso.com"),
    ("CERTAUTH_SIGNING_KEY_SECRET", "signing_key"), ("CERTAUTH_SIGNING_KEY_SECRET", "x" * 128),
    ("CERTAUTH_STATUS_TOKEN_DAYS", "0"), ("CERTAUTH_STATUS_TOKEN_DAYS", "-3"), ("CERTAUTH_STATUS_TOKEN_DAYS", "2.5"),
    ("CERTAUTH_STATUS_TOKEN_DAYS", "366"), ("CERTAUTH_ALLOW_EXPORTABLE_KEYS", "sometimes"),
])
def test_bad_status_link_and_signing_settings_are_refused(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        get_settings()


def test_manual_method_settings(env: pytest.MonkeyPatch) -> None:
    s = get_settings()
    assert (s.verifier_client_id, s.manual_poll_minutes, s.manual_deadline_days) == (None, 10, 7)
    get_settings.cache_clear()
    env.setenv("CERTAUTH_VERIFIER_CLIENT_ID", "6f1c2b1e-8a3d-4f55-9c0e-0d9a7f3b2c11")
    env.setenv("CERTAUTH_MANUAL_POLL_MINUTES", "30")
    env.setenv("CERTAUTH_MANUAL_DEADLINE_DAYS", "14")
    s = get_settings()
    assert (s.verifier_client_id, s.manual_poll_minutes, s.manual_deadline_days) == (
        "6f1c2b1e-8a3d-4f55-9c0e-0d9a7f3b2c11", 30, 14)


@pytest.mark.parametrize(("name", "value"), [
    ("CERTAUTH_MANUAL_POLL_MINUTES", "0"), ("CERTAUTH_MANUAL_POLL_MINUTES", "1441"),
    ("CERTAUTH_MANUAL_POLL_MINUTES", "ten"), ("CERTAUTH_MANUAL_DEADLINE_DAYS", "0"),
    ("CERTAUTH_MANUAL_DEADLINE_DAYS", "366"), ("CERTAUTH_MANUAL_DEADLINE_DAYS", "1.5"),
])
def test_bad_manual_method_settings_are_refused(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        get_settings()


def test_exchange_admin_url_is_a_setting_apart_from_the_token_scope(env: pytest.MonkeyPatch) -> None:
    s = get_settings()
    assert (s.exchange_admin_url, s.exchange_resource) == ("https://outlook.office365.com",) * 2
    get_settings.cache_clear()
    env.setenv("EXCHANGE_ADMIN_URL", "https://outlook.office365.us/")
    s = get_settings()
    # A sovereign cloud's address, in the canonical form; the scope stays EXCHANGE_RESOURCE's.
    assert (s.exchange_admin_url, s.exchange_resource) == ("https://outlook.office365.us",
                                                           "https://outlook.office365.com")


@pytest.mark.parametrize("value", ["http://outlook.office365.com", "outlook.office365.com", "https://"])
def test_exchange_admin_url_must_be_https(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("EXCHANGE_ADMIN_URL", value)
    with pytest.raises(SettingsError, match="EXCHANGE_ADMIN_URL"):
        get_settings()


def test_alert_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv("CERTAUTH_ALERT_WEBHOOK_URL", "https://prod.logic.azure.com/workflows/x/triggers/manual?sig=SECRET")
    env.setenv("CERTAUTH_ALERT_WEBHOOK_FORMAT", "teams")
    env.setenv("CERTAUTH_ALERT_MAIL_TO", " ops@contoso.com, , sec@contoso.com ")
    s = get_settings()
    assert s.alert_webhook_format == "teams"
    assert s.alert_mail_recipients == ["ops@contoso.com", "sec@contoso.com"]
    assert "SECRET" not in repr(s)  # a secret-bearing URL is kept out of logs


@pytest.mark.parametrize("value", ["http://hooks.example.com/x?sig=SECRET", "ftp://x?sig=SECRET", "nope?sig=SECRET"])
def test_alert_webhook_url_is_https_and_never_repeated(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("CERTAUTH_ALERT_WEBHOOK_URL", value)
    with pytest.raises(SettingsError, match="CERTAUTH_ALERT_WEBHOOK_URL") as raised:
        get_settings()
    assert "SECRET" not in str(raised.value)


def test_alert_webhook_format_is_json_or_teams(env: pytest.MonkeyPatch) -> None:
    assert get_settings().alert_webhook_format == "json"
    get_settings.cache_clear()
    env.setenv("CERTAUTH_ALERT_WEBHOOK_FORMAT", "messagecard")
    with pytest.raises(SettingsError, match="CERTAUTH_ALERT_WEBHOOK_FORMAT"):
        get_settings()


def test_rotation_grace_hours(env: pytest.MonkeyPatch) -> None:
    assert get_settings().rotation_grace_hours == 24
    get_settings.cache_clear()
    env.setenv("CERTAUTH_ROTATION_GRACE_HOURS", "0")
    assert get_settings().rotation_grace_hours == 0


@pytest.mark.parametrize("value", ["-1", "721", "1.5", "a day"])
def test_bad_rotation_grace_hours_are_refused(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("CERTAUTH_ROTATION_GRACE_HOURS", value)
    with pytest.raises(SettingsError, match="CERTAUTH_ROTATION_GRACE_HOURS"):
        get_settings()


def test_the_rotations_per_run_setting() -> None:
    assert Settings.from_env({}).rotations_per_run == 20
    assert Settings.from_env({"CERTAUTH_ROTATIONS_PER_RUN": "5"}).rotations_per_run == 5
    for bad in ("0", "-1", "1001", "many"):
        with pytest.raises(SettingsError, match="CERTAUTH_ROTATIONS_PER_RUN"):
            Settings.from_env({"CERTAUTH_ROTATIONS_PER_RUN": bad})


def test_the_signing_key_vault_defaults_to_the_certificates_vault(env: pytest.MonkeyPatch) -> None:
    assert get_settings().signing_key_vault_url is None
    get_settings.cache_clear()
    env.setenv("KEY_VAULT_URL", "https://kv-certauth.vault.azure.net/")
    assert get_settings().signing_key_vault_url == "https://kv-certauth.vault.azure.net"
    get_settings.cache_clear()
    env.setenv("CERTAUTH_SIGNING_KEY_VAULT_URL", "https://kv-sig-certauth.vault.azure.net/")
    s = get_settings()
    assert (s.key_vault_url, s.signing_key_vault_url) == ("https://kv-certauth.vault.azure.net",
                                                          "https://kv-sig-certauth.vault.azure.net")


@pytest.mark.parametrize("value", ["http://kv-sig.vault.azure.net", "kv-sig.vault.azure.net", "https://"])
def test_the_signing_key_vault_url_must_be_https(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("KEY_VAULT_URL", "https://kv-certauth.vault.azure.net")
    env.setenv("CERTAUTH_SIGNING_KEY_VAULT_URL", value)
    with pytest.raises(SettingsError, match="CERTAUTH_SIGNING_KEY_VAULT_URL"):
        get_settings()


def test_without_either_vault_the_signing_key_vault_is_required_naming_both() -> None:
    with pytest.raises(SettingsError, match="CERTAUTH_SIGNING_KEY_VAULT_URL \\(or KEY_VAULT_URL\\)"):
        Settings.from_env({}).require("signing_key_vault_url")


@pytest.mark.parametrize(("environ", "expected"), [
    ({"KEY_VAULT_URL": "https://kv-certauth.vault.azure.net"}, "https://kv-certauth.vault.azure.net"),
    ({"KEY_VAULT_URL": "https://kv-certauth.vault.azure.net",
      "CERTAUTH_SIGNING_KEY_VAULT_URL": "https://kv-sig-certauth.vault.azure.net/"},
     "https://kv-sig-certauth.vault.azure.net"),
])
def test_the_signing_keys_secret_client_is_on_the_signing_key_vault(environ: dict, expected: str) -> None:
    # The simulator serves one vault, so this checks the client the product builds (azure-keyvault-secrets, no I/O
    # until a call) rather than a second vault end to end.
    from shared import reuse, signing

    reuse.clear()
    try:
        keys = signing.signing_keys(Settings.from_env(environ))
        assert keys._client.vault_url == expected
        assert keys._name == "certauth-signing-key"
    finally:
        reuse.clear()
