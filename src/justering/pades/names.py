"""X.509 names of the signing CA and its certificates: the length X.509 allows,
the organisation identifier of ETSI EN 319 412-1."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from justering.errors import ConfigError

__all__ = [
    "MAX_NAME_LENGTH",
    "certificate_name",
    "organisation_name",
    "with_organisation_identifier",
]

MAX_NAME_LENGTH = 64
"""X.509's upper bound for a CN or O (RFC 5280 ub-common-name), which
``cryptography`` applies to the UTF-8 bytes: "Å" counts twice."""
_ORGANISATION_IDENTIFIER = re.compile(r"[A-Z]{3}[A-Z]{2}-[A-Za-z0-9.:/-]{1,60}")
_LABELS = {NameOID.COMMON_NAME: "name", NameOID.ORGANIZATION_NAME: "organisation"}


def certificate_name(*attributes: tuple[ObjectIdentifier, str]) -> x509.Name:
    """An X.509 name; ValueError naming the attribute when one is too long."""
    for oid, value in attributes:
        if len(value.encode()) > MAX_NAME_LENGTH:
            label = _LABELS.get(oid, oid.dotted_string)
            raise ValueError(
                f"{label} {value!r} is longer than the {MAX_NAME_LENGTH} bytes (UTF-8) "
                "a certificate allows"
            )
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def organisation_name(
    organisation: str, *, suffix: str, common_name: str | None = None
) -> x509.Name:
    """The name of a certificate the organisation holds itself (its CA, its seal):
    C = SE, O = ``organisation``, CN = ``common_name``, by default the organisation
    followed by ``suffix`` (only the organisation when that is too long for a CN);
    ValueError as :func:`certificate_name`."""
    if common_name is None:
        common_name = organisation + suffix
        if len(common_name.encode()) > MAX_NAME_LENGTH:
            common_name = organisation
    return certificate_name(
        (NameOID.COUNTRY_NAME, "SE"),
        (NameOID.ORGANIZATION_NAME, organisation),
        (NameOID.COMMON_NAME, common_name),
    )


def with_organisation_identifier(name: x509.Name, identifier: str) -> x509.Name:
    """``name`` with its organizationIdentifier set to ``identifier``, after the O;
    a ConfigError when ``identifier`` is not of the ETSI EN 319 412-1 form."""
    if not _ORGANISATION_IDENTIFIER.fullmatch(identifier):
        raise ConfigError(
            f"organisation identifier {identifier!r}: expected the ETSI EN 319 412-1 form, "
            "e.g. NTRSE-2120001234 (NTR, the country, -, the registration number)"
        )
    attributes: list[x509.NameAttribute[str | bytes]] = []
    for attribute in name:
        if attribute.oid == NameOID.ORGANIZATION_IDENTIFIER:
            continue
        attributes.append(attribute)
        if attribute.oid == NameOID.ORGANIZATION_NAME:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, identifier))
    return x509.Name(attributes)
