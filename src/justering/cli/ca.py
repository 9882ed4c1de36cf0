"""``justering ca``: the signing CA. ``init`` makes it, with its key in a file or
in a PKCS#11 token; ``export`` prints its certificate and chain; ``csr`` writes a
signing request for an outside CA; ``install`` installs the certificate that CA
issued. Exit codes: 0 done, 1 a certificate chain refused, 2 usage or
environment error (docs/identity.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from justering.cli.commands import Commands
from justering.config import Settings
from justering.errors import ConfigError

__all__ = [
    "DEFAULT_CA_ORGANISATION",
    "DEFAULT_KEY_LABEL",
    "ensure_ca",
    "register",
]

EXIT_OK, EXIT_INVALID = 0, 1
DEFAULT_CA_ORGANISATION = "justering"
DEFAULT_KEY_LABEL = "justering-ca"


def register(commands: Commands) -> None:
    """``justering ca`` and its actions."""
    actions = commands.nested(commands.add("ca", help="the signing CA"))
    init = actions.add(
        "init",
        help="create the signing CA, its key in a file or in a PKCS#11 token (HSM)",
        run=_init,
    )
    init.add_argument(
        "--organisation",
        default=DEFAULT_CA_ORGANISATION,
        metavar="NAME",
        help=f"the organisation the CA names (default: {DEFAULT_CA_ORGANISATION})",
    )
    token = init.add_argument_group(
        "key in a PKCS#11 token",
        "generate the CA key inside a token (not extractable); the CA folder keeps only "
        "a reference to it. --pkcs11-module, --token-label and --pin-env go together.",
    )
    token.add_argument("--pkcs11-module", type=Path, metavar="PATH", help="the token's module")
    token.add_argument("--token-label", metavar="LABEL", help="the token's label")
    token.add_argument(
        "--pin-env",
        metavar="VAR",
        help="the environment variable that holds the user PIN (its name; read at use)",
    )
    token.add_argument(
        "--key-label", metavar="LABEL", help=f"the new key's label (default: {DEFAULT_KEY_LABEL})"
    )
    actions.add(
        "export", help="print the CA certificate and its chain (PEM; read-only)", run=_export
    )
    csr = actions.add(
        "csr",
        help="a certificate signing request for an outside CA to issue the CA's certificate",
        run=_csr,
    )
    csr.add_argument("--out", type=Path, metavar="FILE", help="write it here (default: stdout)")
    csr.add_argument(
        "--organisation-identifier",
        metavar="ID",
        help="the organisation's identifier for the subject (ETSI EN 319 412-1, e.g. "
        "NTRSE-2120001234); also names the issued CA apart from the self-signed one",
    )
    install = actions.add(
        "install",
        help="install the CA certificate an outside CA issued, with its chain",
        run=_install,
    )
    install.add_argument(
        "chain",
        type=Path,
        metavar="CERT_CHAIN",
        help="PEM: the issued certificate first, then any intermediates, optionally the root",
    )
    install.add_argument(
        "--root", type=Path, metavar="ROOT.pem", help="the outside root, if not in CERT_CHAIN"
    )


def _init(args: argparse.Namespace, settings: Settings) -> int:
    from justering.pades.ca import SigningCA
    from justering.pades.hsm import TokenReference

    given = [args.pkcs11_module, args.token_label, args.pin_env]
    if any(given) and not all(given):
        raise ConfigError(
            "--pkcs11-module, --token-label and --pin-env go together: give all three to keep "
            "the CA key in a PKCS#11 token, or none for a key file"
        )
    if args.key_label and not all(given):
        raise ConfigError("--key-label names a key in a token: give --pkcs11-module too")
    token = None
    if all(given):
        token = TokenReference(
            args.pkcs11_module.absolute(),
            args.token_label,
            args.key_label or DEFAULT_KEY_LABEL,
            args.pin_env,
        )
    ca = SigningCA.create(settings.ca_dir, organisation=args.organisation, token=token)
    print(f"created the signing CA in {settings.ca_dir}")
    print(f"its key: {ca.key_location}")
    if token is not None:
        print(f"the PIN is read from the environment variable {token.pin_env} at each start")
    print(f"SHA-256 fingerprint: {ca.fingerprint}")
    from justering.pades.seal import TrailSeal

    seal = TrailSeal.load_or_create(ca)  # its key where the CA's is: a file, or the token
    print(f"and the trail seal {seal.certificate.subject.rfc4514_string()}")
    return EXIT_OK


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from justering.pades.ca import SigningCA

    print(SigningCA.load(settings.ca_dir).export_pem(), end="")
    return EXIT_OK


def _csr(args: argparse.Namespace, settings: Settings) -> int:
    from justering.pades.ca import SigningCA

    ca = SigningCA.load(settings.ca_dir)
    request = ca.signing_request(organisation_identifier=args.organisation_identifier)
    request_pem = request.public_bytes(serialization.Encoding.PEM)
    if args.out is None:
        sys.stdout.write(request_pem.decode("ascii"))
        where = "above"
    else:
        try:
            args.out.write_bytes(request_pem)
        except OSError as error:
            raise ConfigError(f"--out {args.out}: {error.strerror}") from None
        where = f"in {args.out}"
    print(
        f"justering: the signing request for {request.subject.rfc4514_string()} is "
        f"{where}; once the issuing CA has signed it, install what it returns with "
        "`justering ca install CERT_CHAIN [--root ROOT.pem]`",
        file=sys.stderr,
    )
    return EXIT_OK


def _install(args: argparse.Namespace, settings: Settings) -> int:
    from justering.pades.ca import SigningCA
    from justering.pades.ca_chain import ChainError, install_issued_chain
    from justering.pades.certificates import common_name, fingerprint

    ca = SigningCA.load(settings.ca_dir)
    try:
        certificates = _read_pem(args.chain)
        roots = _read_pem(args.root) if args.root else []
        installed = install_issued_chain(ca, certificates, roots)
    except ChainError as error:
        print(f"justering: {error.diagnostics()}", file=sys.stderr)
        return EXIT_INVALID
    root = installed.chain[-1]
    print(f"installed the CA certificate {installed.certificate.subject.rfc4514_string()}")
    issuers = " under ".join(repr(common_name(cert)) for cert in installed.chain)
    print(f"issued by {issuers}")
    print(f"root: {common_name(root)!r}, SHA-256 fingerprint {fingerprint(root)}")
    print(
        "signatures from now on chain to that root: validators trust it "
        "(`justering verify --trust ROOT.pem`, a pdfsig NSS database, Adobe)"
    )
    return EXIT_OK


def _read_pem(path: Path) -> list[x509.Certificate]:
    from justering.pades.ca_chain import ChainError, ChainProblem

    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as error:
        raise ChainError(ChainProblem.UNREADABLE, f"{path}: {error.strerror}") from None
    except ValueError:
        raise ChainError(ChainProblem.UNREADABLE, f"{path}: not a PEM certificate file") from None


def ensure_ca(settings: Settings, organisation: str = DEFAULT_CA_ORGANISATION) -> None:
    """Embedded defaults: create a local CA the first time one is needed. With a
    shared ledger (not SQLite) every process must sign with the same CA, so none is
    made up here: it is created once (`justering ca init`) and copied."""
    from justering.pades.ca import CA_CERT_FILE, SigningCA

    if (
        not settings.database_url.startswith("sqlite")
        and not (settings.ca_dir / CA_CERT_FILE).exists()
    ):
        raise ConfigError(
            f"no signing CA in {settings.ca_dir}: with a shared ledger "
            f"({settings.database_url.split('://')[0]}) every process must use the same CA; "
            "create it once with `justering ca init` and copy that folder to each "
            "machine (docs/deploy.md)"
        )
    ca, created = SigningCA.load_or_create(settings.ca_dir, organisation=organisation)
    if created:
        print(f"justering: created a local signing CA ({ca.fingerprint[:16]}…)", file=sys.stderr)
