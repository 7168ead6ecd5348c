"""shared.signing: capability tokens (HMAC-SHA256, named key version, purpose, subject, expiry)."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from shared.signing import SigningKey, TokenRejected, make_token, read_token, token_version

KEY = SigningKey("0123456789abcdef0123456789abcdef", b"k" * 32)
OTHER = SigningKey("fedcba9876543210fedcba9876543210", b"o" * 32)
ONBOARDING = "72f988bf-86f1-41af-91ab-2d7cd011db47.0123456789abcdef0123"
NOW = 1_800_000_000


def keys(*signing_keys: SigningKey) -> dict[str, bytes]:
    return {k.version: k.key for k in signing_keys}


def test_a_token_names_its_key_version_and_reads_back() -> None:
    token = make_token(KEY, "status", ONBOARDING, NOW + 60)
    assert token_version(token) == KEY.version
    assert read_token(token, keys(KEY), "status", ONBOARDING, now=NOW) == {"p": "status", "s": ONBOARDING,
                                                                            "e": NOW + 60}
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # URL-safe as it is


def test_either_of_the_accepted_versions_verifies() -> None:
    token = make_token(OTHER, "status", ONBOARDING, NOW + 60)
    assert read_token(token, keys(KEY, OTHER), "status", ONBOARDING, now=NOW)["s"] == ONBOARDING
    with pytest.raises(TokenRejected, match="not accepted"):
        read_token(token, keys(KEY), "status", ONBOARDING, now=NOW)


def test_another_subject_or_purpose_is_refused() -> None:
    token = make_token(KEY, "status", ONBOARDING, NOW + 60)
    with pytest.raises(TokenRejected, match="subject"):
        read_token(token, keys(KEY), "status", ONBOARDING.replace("0123", "9999"), now=NOW)
    with pytest.raises(TokenRejected, match="purpose"):
        read_token(token, keys(KEY), "onboardingLink", ONBOARDING, now=NOW)


def test_an_expired_token_is_refused() -> None:
    token = make_token(KEY, "status", ONBOARDING, NOW + 60)
    with pytest.raises(TokenRejected, match="expired"):
        read_token(token, keys(KEY), "status", ONBOARDING, now=NOW + 60)
    with pytest.raises(TokenRejected, match="expired"):  # the wall clock, when no `now` is given
        read_token(make_token(KEY, "status", ONBOARDING, int(time.time()) - 1), keys(KEY), "status", ONBOARDING)


def test_a_forged_or_altered_token_is_refused() -> None:
    version, payload, mac = make_token(KEY, "status", ONBOARDING, NOW + 60).split(".")
    longer = base64.urlsafe_b64encode(json.dumps({"p": "status", "s": ONBOARDING, "e": NOW + 10**9}).encode())
    altered = f"{version}.{longer.decode().rstrip('=')}.{mac}"
    same_key_other_secret = make_token(SigningKey(KEY.version, b"x" * 32), "status", ONBOARDING, NOW + 60)
    for token in (altered, same_key_other_secret, f"{version}.{payload}.{mac[:-2]}AA", f"{version}.{payload}"):
        with pytest.raises(TokenRejected):
            read_token(token, keys(KEY), "status", ONBOARDING, now=NOW)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "../x.y.z", "v.%%%.m", None, 42])
def test_malformed_tokens_are_refused(token) -> None:
    with pytest.raises(TokenRejected):
        token_version(token)
