"""Request and record types, and their validation (pydantic).

A request that fails validation is answered 400 with one message per problem, each naming the field
(in the request's own camelCase) and the rule it broke. Nothing is created before validation passes.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import catalog
from .rules import (  # noqa: F401  (re-exported: the rules the triggers check without pydantic)
    DEFAULT_VALIDITY_MONTHS,
    GUID_PATTERN,
    LONGEST_MONTH,
    MAX_VALIDITY_MONTHS,
    RequestError,
    iso_duration,
    months_within,
    validity_months_for,
)

MAX_BODY_BYTES = 16 * 1024
# A request that imports a PFX may be larger: a PFX with its chain is tens of KiB (base64 adds a third). This limit
# applies only when the body carries certificate.pfx; every other request keeps MAX_BODY_BYTES.
MAX_PFX_BODY_BYTES = 256 * 1024
MAX_PFX_BASE64_LENGTH = MAX_PFX_BODY_BYTES
PFX_PASSWORD_MAX_LENGTH = 1024
MAILBOX_MAX_LENGTH = 254  # RFC 5321 path limit
# A service mailbox is an Exchange address. Exchange's alias rule (learn.microsoft.com/powershell/module/exchange/
# set-mailbox, -Alias): letters, digits and ! # $ % & ' * + - / = ? ^ _ ` { | } ~, periods surrounded by other valid
# characters, at most 64 characters. That is wider than Entra's UPN rule (A-Z a-z 0-9 ' . - _ ! # ^ ~), so narrowing
# the input is no defence: every place the address goes (Graph, names, the certificate subject, Table Storage, logs)
# must be safe for all of these characters. Exchange also allows U+00A1-U+00FF in aliases; certauth keeps to ASCII.
ALIAS_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
EXCHANGE_LOCAL_PART = re.compile(rf"{ALIAS_ATOM}(?:\.{ALIAS_ATOM})*")
LOCAL_PART_MAX_LENGTH = 64
# A DNS domain (RFC 1035 section 2.3.1, RFC 1123 section 2.1): labels of letters, digits and inner hyphens, each at
# most 63 characters, at most 253 in all, ending in a top-level domain that is not all digits (RFC 3696 section 2).
DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
DOMAIN_MAX_LENGTH = 253
MAILBOX_RULE = ("must be an Exchange mailbox address: before the @ at most 64 characters of A-Z a-z 0-9 and "
                "! # $ % & ' * + - / = ? ^ _ ` { | } ~, with periods only between them (not first, last or doubled); "
                "after it a DNS domain (labels of A-Z a-z 0-9 and inner hyphens, at most 63 characters each, ending "
                "in a top-level domain)")


def _address_problem(value: str) -> str | None:
    """What breaks Exchange's address rule in `value` (None when nothing does)."""
    if not value.isascii():
        return "has characters outside ASCII"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "has control characters"
    if any(c.isspace() for c in value):
        return "has spaces"
    if value.count("@") != 1:
        return "has no @" if "@" not in value else "has more than one @"
    local, domain = value.split("@")
    if not local:
        return "has nothing before the @"
    if len(local) > LOCAL_PART_MAX_LENGTH:
        return f"has {len(local)} characters before the @"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "has a period first, last or doubled before the @"
    if not EXCHANGE_LOCAL_PART.fullmatch(local):
        refused = sorted({c for c in local if c != "." and not re.fullmatch(ALIAS_ATOM, c)})
        return f"has {', '.join(repr(c) for c in refused)} before the @"
    labels = domain.split(".")
    if not domain:
        return "has no domain"
    if len(domain) > DOMAIN_MAX_LENGTH or not all(DNS_LABEL.fullmatch(label) for label in labels):
        return f"has a domain that is not a DNS name ({domain!r})"
    if len(labels) < 2 or labels[-1].isdigit():
        return f"has a domain without a top-level domain ({domain!r})"
    return None


def exchange_address(value: str) -> str:
    """`value` as a service mailbox (lower case) if it follows Exchange's address rule; ValueError naming the
    rule otherwise."""
    problem = _address_problem(value)
    if problem is None and len(value) > MAILBOX_MAX_LENGTH:
        problem = f"has {len(value)} characters (at most {MAILBOX_MAX_LENGTH})"
    if problem is not None:
        raise ValueError(f"{MAILBOX_RULE}; this one {problem}")
    return value.lower()


class FieldProblem(ValueError):
    """A model-level rule broken by one field: the 400 names `field` (camelCase, under the model's path)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(rule)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False, frozen=True)


class CertificateOptions(_Strict):
    """The request's certificate, one of three variants (mutually exclusive): a Key Vault certificate
    `{validityMonths, keySize, exportable}` (the default), the customer's PFX `{pfx, password}`, imported as a
    non-exportable certificate, or `{issuer: "customer"}`, a Key Vault key and CSR for the customer's own CA."""

    # None: the product picks (DEFAULT_VALIDITY_MONTHS, or less where the tenant's app management policy caps
    # certificate lifetimes; see validity_months_for).
    validity_months: int | None = Field(None, alias="validityMonths", ge=1, le=MAX_VALIDITY_MONTHS, strict=True,
                                        description="months of validity (default 12, or what the tenant's app "
                                                    "management policy allows)")
    key_size: Literal[2048, 3072, 4096] = Field(2048, alias="keySize", description="RSA key size")
    exportable: bool = Field(False, strict=True, description="a PFX in the vault (off unless the operator allows "
                                                             "exportable keys); by default the key never leaves "
                                                             "Key Vault")
    # The PFX and its password are imported by the HTTP trigger and go no further (never into orchestration
    # input, Table Storage or logs); repr=False keeps them out of any repr of the request.
    pfx: str | None = Field(None, max_length=MAX_PFX_BASE64_LENGTH, strict=True, repr=False,
                            description="the customer's PFX (PKCS#12) in base64, imported as a non-exportable "
                                        "certificate", json_schema_extra={"format": "byte"})
    password: str | None = Field(None, max_length=PFX_PASSWORD_MAX_LENGTH, strict=True, repr=False,
                                 description="the PFX's password (an empty string for none)",
                                 json_schema_extra={"format": "password"})
    issuer: Literal["customer"] | None = None

    @field_validator("pfx")
    @classmethod
    def _pfx_is_base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                decoded = base64.b64decode("".join(value.split()), validate=True)
            except ValueError:
                raise ValueError("must be the PFX (PKCS#12) file in base64") from None
            if not decoded:
                raise ValueError("must be the PFX (PKCS#12) file in base64, not empty")
        return value

    @model_validator(mode="after")
    def _one_variant(self) -> CertificateOptions:
        key_vault = sorted(ALIASES[name] for name in self.model_fields_set
                           if name in ("validity_months", "key_size", "exportable"))
        if self.pfx is not None and self.issuer is not None:
            raise FieldProblem("issuer", "must not be given with pfx: import a PFX, or ask for a CSR, not both")
        chosen = "pfx" if self.pfx is not None else "issuer" if self.issuer is not None else None
        if chosen and key_vault:
            raise FieldProblem(key_vault[0], f"must not be given with {chosen}: {', '.join(key_vault)} only apply "
                               "to a certificate that Key Vault creates and signs itself")
        if self.pfx is not None and self.password is None:
            raise FieldProblem("password", "is required with pfx (an empty string for a PFX without one)")
        if self.pfx is None and self.password is not None:
            raise FieldProblem("password", "is only allowed with pfx")
        return self

    @property
    def source(self) -> str:
        """Where the certificate comes from (the record's CertificateSource)."""
        return "imported" if self.pfx is not None else "customerCa" if self.issuer is not None else "keyVault"

    def pfx_bytes(self) -> bytes:
        """The PFX file (validated base64)."""
        return base64.b64decode("".join((self.pfx or "").split()))


ALIASES = {"validity_months": "validityMonths", "key_size": "keySize", "exportable": "exportable"}


class OnboardingRequest(_Strict):
    """Body of POST /api/onboardings."""

    # description and json_schema_extra only describe the rules below (shared/openapi.py): validation is unchanged.
    tenant_id: str = Field(alias="tenantId", description="the customer tenant's id (a GUID)",
                           json_schema_extra={"format": "uuid", "pattern": GUID_PATTERN})
    service_mailbox: str = Field(alias="serviceMailbox", max_length=MAILBOX_MAX_LENGTH, description=MAILBOX_RULE,
                                 json_schema_extra={"format": "email"})
    method: Literal["automatic", "manual"] = Field(
        "automatic", description="automatic: certauth sets everything up with the onboarding app's permissions; "
                                 "manual: the tenant's administrator runs a generated script, certauth verifies")
    permission_profile: str = Field(catalog.DEFAULT_PROFILE, alias="permissionProfile",
                                    description="the API permissions to grant (shared/catalog.py)",
                                    json_schema_extra={"enum": sorted(catalog.PROFILES)})
    directory_role: str | None = Field(None, alias="directoryRole",
                                       description="the directory role to assign; absent: the profile's role, "
                                                   "null: none",
                                       json_schema_extra={"enum": [*sorted(catalog.DIRECTORY_ROLES), None]})
    certificate: CertificateOptions = Field(default_factory=CertificateOptions)

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _tenant_is_guid(cls, value: object) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", value):
            raise ValueError("must be a GUID (the tenant id, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47)")
        parsed = uuid.UUID(value)
        if parsed.int == 0:
            raise ValueError("must not be the nil GUID")
        return str(parsed)

    @field_validator("service_mailbox", mode="before")
    @classmethod
    def _mailbox_is_address(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return exchange_address(value)

    @field_validator("permission_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in catalog.PROFILES:
            raise ValueError(f"must be one of {sorted(catalog.PROFILES)}")
        return value

    @field_validator("directory_role")
    @classmethod
    def _known_role(cls, value: str | None) -> str | None:
        if value is not None and value not in catalog.DIRECTORY_ROLES:
            raise ValueError(f"must be one of {sorted(catalog.DIRECTORY_ROLES)} or null")
        return value

    @model_validator(mode="after")
    def _default_role_from_profile(self) -> OnboardingRequest:
        # An absent directoryRole means "the profile's role"; an explicit null means "no role".
        if "directory_role" not in self.model_fields_set:
            object.__setattr__(self, "directory_role",
                               catalog.PROFILES[self.permission_profile].default_directory_role)
        return self


class LinkRequest(OnboardingRequest):
    """POST /api/onboarding-links: an onboarding request whose tenantId is optional (the consenting tenant is then
    the one onboarded; shared/links.py)."""

    tenant_id: str | None = Field(None, alias="tenantId")


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "body"


def describe_validation_error(error: ValidationError) -> list[dict[str, str]]:
    """pydantic errors → [{field, rule}] with camelCase field paths."""
    problems = []
    for item in error.errors(include_url=False):
        rule = item["msg"].removeprefix("Value error, ")
        loc = item["loc"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            loc = (*loc, cause.field)
        if item["type"] == "extra_forbidden":
            rule = "is not a known field"
        elif item["type"] == "missing":
            rule = "is required"
        problems.append({"field": _field_path(loc), "rule": rule})
    return problems


def _imports_pfx(body: bytes) -> bool:
    """Whether a body is a JSON object whose certificate carries a pfx (the one case of the larger limit)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    certificate = parsed.get("certificate") if isinstance(parsed, dict) else None
    return isinstance(certificate, dict) and isinstance(certificate.get("pfx"), str)


def parse_onboarding_request(body: bytes) -> OnboardingRequest:
    """Validate the raw body of POST /api/onboardings (size, JSON, fields) or raise RequestError."""
    if len(body) > MAX_BODY_BYTES and not (len(body) <= MAX_PFX_BODY_BYTES and _imports_pfx(body)):
        rule = (f"must be at most {MAX_BODY_BYTES} bytes ({MAX_PFX_BODY_BYTES} bytes when it imports a PFX, "
                "certificate.pfx)")
        raise RequestError([{"field": "body", "rule": rule}])
    if not body.strip():
        raise RequestError([{"field": "body", "rule": "must be a JSON object"}])
    try:
        return OnboardingRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        if any(item["type"] == "json_invalid" for item in exc.errors()):
            problems = [{"field": "body", "rule": "must be valid JSON"}]
        elif any(item["type"] == "model_type" for item in exc.errors() if not item["loc"]):
            problems = [{"field": "body", "rule": "must be a JSON object"}]
        raise RequestError(problems) from None
