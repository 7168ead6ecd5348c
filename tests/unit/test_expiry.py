"""The expiry monitor's decisions: one alert per threshold, only the current one after missed days, expired once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.expiry import DAY, EXPIRED, EXPIRY, ROTATING, Due, alert_body, current_threshold, days_left, due_alert
from shared.settings import Settings, SettingsError
from shared.state import decode_continuation, encode_continuation, expiry_day, run_key

THRESHOLDS = (30, 14, 7, 3, 1)


def claimed(state: dict | None, due: Due, remaining: float) -> dict:
    """The alert state after `due` was claimed (what shared.expiry.plan writes)."""
    state = dict(state or {})
    if due.kind == EXPIRED:
        state["Expired"] = True
    else:
        state["LastThreshold"] = current_threshold(remaining, THRESHOLDS)
    if due.kind == ROTATING:
        state["Rotating"] = True
    return state


def daily_alerts(start_days: float, step_days: float = 1.0, rotating=lambda days: False) -> list[Due]:
    """The alerts a daily run sends from `start_days` before expiry until two days after it."""
    state, sent, remaining = None, [], start_days * DAY
    while remaining > -2 * DAY:
        due = due_alert(remaining, THRESHOLDS, state, rotating(remaining / DAY))
        if due is not None:
            sent.append(due)
            state = claimed(state, due, remaining)
        remaining -= step_days * DAY
    return sent


def test_each_threshold_alerts_once_then_expired() -> None:
    assert daily_alerts(61) == [Due(EXPIRY, 30), Due(EXPIRY, 14), Due(EXPIRY, 7), Due(EXPIRY, 3), Due(EXPIRY, 1),
                                Due(EXPIRED, 0)]


def test_hourly_runs_send_the_same_alerts_as_daily_ones() -> None:
    assert daily_alerts(40, step_days=1 / 24) == daily_alerts(40.5)


def test_after_missed_days_only_the_current_threshold_alerts() -> None:
    state = {"LastThreshold": 30}
    # 20 days left, then 5: 14 is skipped over, only 7 is due
    assert due_alert(5 * DAY, THRESHOLDS, state) == Due(EXPIRY, 7)
    assert due_alert(5 * DAY, THRESHOLDS, {"LastThreshold": 7}) is None
    # first run ever at 2.5 days left: only the 3-day threshold
    assert due_alert(2.5 * DAY, THRESHOLDS, None) == Due(EXPIRY, 3)


def test_outside_every_threshold_nothing_is_due() -> None:
    assert due_alert(30 * DAY + 1, THRESHOLDS, None) is None
    assert due_alert(30 * DAY, THRESHOLDS, None) == Due(EXPIRY, 30)


def test_expired_alerts_once_even_after_missed_thresholds() -> None:
    assert due_alert(-3 * DAY, THRESHOLDS, {"LastThreshold": 14}) == Due(EXPIRED, 0)
    assert due_alert(0, THRESHOLDS, None) == Due(EXPIRED, 0)
    assert due_alert(-3 * DAY, THRESHOLDS, {"LastThreshold": 1, "Expired": True}) is None


def test_a_running_rotation_alerts_rotating_once_instead_of_thresholds() -> None:
    # the rotation runs from 25 to 6 days left (then fails): 14 and 7 fall in it, one "rotating" for both; the
    # threshold current when it stopped (7) alerts then
    sent = daily_alerts(40, rotating=lambda days: 5 < days <= 25)
    assert sent == [Due(EXPIRY, 30), Due(ROTATING, 0), Due(EXPIRY, 7), Due(EXPIRY, 3), Due(EXPIRY, 1),
                    Due(EXPIRED, 0)]


def test_days_left_rounds_down() -> None:
    now = datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert days_left(now + timedelta(days=7, hours=23), now) == 7
    assert days_left(now + timedelta(hours=1), now) == 0
    assert days_left(now - timedelta(hours=1), now) == -1


def test_the_alert_body_follows_the_interface() -> None:
    now = datetime(2026, 1, 1, 6, tzinfo=UTC)
    certificate = {"CertificateName": "certauth-abc", "Version": "v1", "TenantId": "t", "ServiceMailbox": "m@x",
                   "Thumbprint": "AB", "NotAfter": now + timedelta(days=6, hours=1), "AppId": "app"}
    body = alert_body(Due(EXPIRY, 7), "t.1234", certificate, now, "detail")
    assert body == {"id": "alert-certauth-abc-v1-certificateExpiry-7", "schema": "certauth.alert/v1",
                    "type": "certificateExpiry", "severity": "warning", "tenantId": "t", "serviceMailbox": "m@x",
                    "appId": "app", "thumbprint": "AB", "notAfter": "2026-01-07T07:00:00Z", "daysLeft": 6,
                    "threshold": 7, "onboardingId": "t.1234", "detail": "detail"}
    assert alert_body(Due(EXPIRED, 0), "t.1234", certificate, now, "")["severity"] == "critical"
    assert alert_body(Due(EXPIRY, 30), "t.1234", certificate, now, "")["severity"] == "info"


def test_index_keys_sort_as_dates_and_runs_newest_first() -> None:
    assert expiry_day(datetime(2026, 3, 9, 23, 59, tzinfo=UTC)) == "20260309"
    assert expiry_day(datetime(2026, 3, 10, 1, tzinfo=timedelta_zone(3))) == "20260309"
    earlier, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert run_key(later, "b") < run_key(earlier, "a")


def timedelta_zone(hours: int):
    from datetime import timezone

    return timezone(timedelta(hours=hours))


def test_continuation_tokens_round_trip_and_refuse_others() -> None:
    token = {"NextPartitionKey": "certificate", "NextRowKey": "t.1"}
    assert decode_continuation(encode_continuation(token)) == token
    for bad in ("%%%", "bm90IGpzb24", encode_continuation({"a": 1})):  # type: ignore[dict-item]
        with pytest.raises(ValueError, match="not a continuation token"):
            decode_continuation(bad)


def test_expiry_settings() -> None:
    settings = Settings.from_env({})
    assert (settings.alert_thresholds_days, settings.rotate_before_days, settings.history_retention_days,
            settings.audit_retention_days) == ((30, 14, 7, 3, 1), 30, 90, 400)
    settings = Settings.from_env({"CERTAUTH_ALERT_THRESHOLDS_DAYS": "7, 60,1", "CERTAUTH_ROTATE_BEFORE_DAYS": "0"})
    assert settings.alert_thresholds_days == (60, 7, 1)
    assert settings.rotate_before_days == 0


@pytest.mark.parametrize(("name", "value"), [
    ("CERTAUTH_ALERT_THRESHOLDS_DAYS", "7,7"), ("CERTAUTH_ALERT_THRESHOLDS_DAYS", "0,3"),
    ("CERTAUTH_ALERT_THRESHOLDS_DAYS", "30;14"), ("CERTAUTH_ALERT_THRESHOLDS_DAYS", "400"),
    ("CERTAUTH_ROTATE_BEFORE_DAYS", "-1"), ("CERTAUTH_HISTORY_RETENTION_DAYS", "0"),
    ("CERTAUTH_AUDIT_RETENTION_DAYS", "99999"),
])
def test_bad_expiry_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_make_up_passes_certauth_settings_through_and_sets_the_schedule() -> None:
    from sandbox.up import host_settings, passed_through_settings

    environ = {"CERTAUTH_ALERT_WEBHOOK_URL": "https://example.invalid/hook?sig=x", "CERTAUTH_EXPIRY_SCHEDULE":
               "0 30 * * * *", "PATH": "/bin", "AZURE_CLIENT_ID": "x"}
    assert passed_through_settings(environ) == {"CERTAUTH_ALERT_WEBHOOK_URL": "https://example.invalid/hook?sig=x",
                                                "CERTAUTH_EXPIRY_SCHEDULE": "0 30 * * * *"}
    settings = host_settings({"connectionString": "UseDevelopmentStorage=true"},
                             {"graphUrl": "g", "loginUrl": "l", "vaultUrl": "v", "identityEndpoint": "i",
                              "identityHeader": "h", "caBundle": "c"})
    assert settings["CERTAUTH_EXPIRY_SCHEDULE"] == "0 0 6 * * *"


def test_at_most_the_bound_of_rotations_start_per_run_soonest_first() -> None:
    from functions.expiry import soonest_first

    base = datetime(2026, 3, 1, tzinfo=UTC)
    wanted = [(base + timedelta(days=d), f"rotation-{d}", {"onboardingId": str(d)}) for d in (9, 3, 25, 1, 14)]
    started, deferred = soonest_first(wanted, 3)
    assert [instance for instance, _ in started] == ["rotation-1", "rotation-3", "rotation-9"]
    assert started[0][1] == {"onboardingId": "1"}
    assert deferred == 2
    everything, none_deferred = soonest_first(wanted, 20)
    assert [instance for instance, _ in everything] == ["rotation-1", "rotation-3", "rotation-9", "rotation-14",
                                                        "rotation-25"]
    assert none_deferred == 0
    assert soonest_first([], 20) == ([], 0)
