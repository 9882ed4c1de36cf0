"""What a signer certificate says about how its signer was identified.

Three things, each readable by any X.509 tool:

- a **certificate policy** per level (:data:`POLICY_OIDS`), with a user notice in
  Swedish: link-only signing (a simple electronic signature) has its own policy,
  and each assurance level of e-legitimation one. The OIDs are under the project's
  own arc, :data:`PROJECT_ARC`: an OID derived from a UUID (ITU-T X.667, the
  ``2.25`` arc), which anyone may mint without registration and which no one else
  will mint. No standard policy fits: ETSI's (QCP, NCP, LCP) state how an audited
  CA operates, which a municipality's own CA cannot claim.
- the **authentication context** of a login, in the extension Sweden Connect's
  signature services use for the same purpose (RFC 7773, ``1.2.752.201.5.1``,
  non-critical), as a SAML authentication context (``saci``): the identity
  provider, the time of authentication, the ``acr`` and the SHA-256 of the ID token.
  It carries no attribute of the person.
- a **pseudonymous subject serialNumber** derived from the keyed hash of the
  signer's personnummer (``justering.model.personnummer.pseudonym``): the same for
  the same person, never the number.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from asn1crypto import core
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from justering.model.assurance import Assurance, SignerIdentity

__all__ = [
    "AUTH_CONTEXT_OID",
    "POLICY_OIDS",
    "PROJECT_ARC",
    "SACI_CONTEXT_TYPE",
    "UNKNOWN",
    "CertificateAssurance",
    "assurance_extensions",
    "assurance_of",
]

PROJECT_ARC = "2.25.258983780922198496554769629546037000891"
"""justering's own OID arc (UUID c2d6763d-b18b-4663-ad8a-788d3e963abb)."""
POLICY_OIDS: dict[Assurance, ObjectIdentifier] = {
    Assurance.LINK: ObjectIdentifier(f"{PROJECT_ARC}.1.1"),
    Assurance.LOA2: ObjectIdentifier(f"{PROJECT_ARC}.1.2"),
    Assurance.LOA3: ObjectIdentifier(f"{PROJECT_ARC}.1.3"),
    Assurance.LOA4: ObjectIdentifier(f"{PROJECT_ARC}.1.4"),
}
"""The certificate policy of each level: ``.1.1`` simple electronic signature (link
only), ``.1.2``–``.1.4`` a login with e-legitimation at tillitsnivå 2–4."""
AUTH_CONTEXT_OID = ObjectIdentifier("1.2.752.201.5.1")
"""id-ce-authContext (RFC 7773)."""
SACI_CONTEXT_TYPE = "http://id.elegnamnden.se/auth-cont/1.0/saci"
_SACI = f"{{{SACI_CONTEXT_TYPE}}}"
_SERVICE_ID = "justering"
_MAX_CONTEXT_INFO = 8192
_NOTICE = {
    Assurance.LINK: "Enkel elektronisk underskrift: undertecknaren identifierades "
    "enbart genom länken i e-post (justering).",
}
_POLICY_LEVELS = {oid: level for level, oid in POLICY_OIDS.items()}

ET.register_namespace("saci", SACI_CONTEXT_TYPE)


class _AuthenticationContext(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 (asn1crypto's declaration)
        ("contextType", core.UTF8String),
        ("contextInfo", core.UTF8String, {"optional": True}),
    ]


class _AuthenticationContexts(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _AuthenticationContext


def _notice(identity: SignerIdentity) -> str:
    if identity.assurance in _NOTICE:
        return _NOTICE[identity.assurance]
    return (
        "Undertecknaren loggade in med e-legitimation, "
        f"{identity.assurance.level_name}, före underskriften (justering)."
    )


def assurance_extensions(identity: SignerIdentity) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions (and whether each is critical) that record ``identity`` in a
    signer certificate: the policy of its level and, for a login, its context."""
    policy = x509.PolicyInformation(
        POLICY_OIDS[identity.assurance], [x509.UserNotice(None, _notice(identity))]
    )
    found: list[tuple[x509.ExtensionType, bool]] = [(x509.CertificatePolicies([policy]), False)]
    if identity.logged_in and identity.issuer and identity.acr:
        contexts = _AuthenticationContexts(
            [{"contextType": SACI_CONTEXT_TYPE, "contextInfo": _saci(identity)}]
        )
        found.append((x509.UnrecognizedExtension(AUTH_CONTEXT_OID, contexts.dump()), False))
    return found


def _saci(identity: SignerIdentity) -> str:
    """The SAML authentication context (Sweden Connect's ``saci`` schema) of a login,
    without any attribute of the person."""
    root = ET.Element(f"{_SACI}SAMLAuthContext")
    info = ET.SubElement(root, f"{_SACI}AuthContextInfo")
    info.set("IdentityProvider", identity.issuer or "")
    if identity.authenticated_at is not None:
        instant = identity.authenticated_at.astimezone(dt.UTC)
        info.set("AuthenticationInstant", instant.strftime("%Y-%m-%dT%H:%M:%SZ"))
    info.set("AuthnContextClassRef", identity.acr or "")
    if identity.id_token_sha256:
        info.set("AssertionRef", identity.id_token_sha256)
    info.set("ServiceID", _SERVICE_ID)
    return ET.tostring(root, encoding="unicode")


@dataclass(frozen=True)
class CertificateAssurance:
    """How a signer certificate says its signer was identified."""

    assurance: Assurance | None
    """None: the certificate names no policy of justering's (made before signatures
    said so, or by someone else)."""
    identity_provider: str | None = None
    acr: str | None = None
    authenticated_at: dt.datetime | None = None

    def meets(self, minimum: Assurance) -> bool:
        return self.assurance is not None and self.assurance.at_least(minimum)

    @property
    def swedish(self) -> str:
        """How the signer was identified, as intyg.pdf says it."""
        if self.assurance is None:
            return "okänt (certifikatet anger inte hur undertecknaren identifierades)"
        return self.assurance.swedish

    def to_json(self) -> dict[str, Any]:
        at = self.authenticated_at
        return {
            "assurance": self.assurance.value if self.assurance else "unknown",
            "identity_provider": self.identity_provider,
            "acr": self.acr,
            "authenticated_at": at.astimezone(dt.UTC).isoformat() if at else None,
        }


UNKNOWN = CertificateAssurance(None)


def assurance_of(certificate: x509.Certificate) -> CertificateAssurance:
    """What ``certificate`` says about its signer's identification; never raises (a
    malformed extension says nothing)."""
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except (x509.ExtensionNotFound, ValueError):
        return UNKNOWN
    levels = [
        _POLICY_LEVELS[p.policy_identifier]
        for p in policies.value
        if p.policy_identifier in _POLICY_LEVELS
    ]
    if len(levels) != 1:
        return UNKNOWN
    level = levels[0]
    if level is Assurance.LINK:
        return CertificateAssurance(level)
    return _with_context(level, certificate)


def _with_context(level: Assurance, certificate: x509.Certificate) -> CertificateAssurance:
    try:
        value = certificate.extensions.get_extension_for_oid(AUTH_CONTEXT_OID).value
        if not isinstance(value, x509.UnrecognizedExtension):
            return CertificateAssurance(level)
        contexts = _AuthenticationContexts.load(value.value)
        for context in contexts:
            if context["contextType"].native != SACI_CONTEXT_TYPE:
                continue
            info = _context_info(str(context["contextInfo"].native or ""))
            if info is not None:
                return CertificateAssurance(level, *info)
    except (x509.ExtensionNotFound, ValueError, TypeError, ET.ParseError):
        pass
    return CertificateAssurance(level)


def _context_info(text: str) -> tuple[str | None, str | None, dt.datetime | None] | None:
    """(identity provider, acr, authentication time) from a ``saci`` document."""
    if len(text) > _MAX_CONTEXT_INFO or "<!" in text:  # no DTD, no entities
        return None
    root = ET.fromstring(text)  # noqa: S314 (bounded, and no DTD: see above)
    info = root.find(f"{_SACI}AuthContextInfo")
    if root.tag != f"{_SACI}SAMLAuthContext" or info is None:
        return None
    instant = info.get("AuthenticationInstant")
    at = dt.datetime.fromisoformat(instant.replace("Z", "+00:00")) if instant else None
    return info.get("IdentityProvider"), info.get("AuthnContextClassRef"), at
