"""The signing CA's key in a PKCS#11 token: an HSM, a smart card, or SoftHSM2.

The key is generated inside the token, sensitive and not extractable: its value
never leaves the token and nothing of it is written to disk. The CA folder
keeps a reference to it (:class:`TokenReference`, ``ca-token.json``): the
PKCS#11 module, the token's label, the key's label, and the *name* of the
environment variable that holds the user PIN. The PIN itself is read from that
variable when the process first uses the key, and is stored nowhere.

Signing goes through python-pkcs11. The CA's certificates, CRLs and signing
requests are built by ``cryptography``, whose builders take any object that
implements its private-key interface: :class:`TokenKey` implements
:class:`~cryptography.hazmat.primitives.asymmetric.ec.EllipticCurvePrivateKey`
with the token's raw ECDSA (``CKM_ECDSA``) over a digest computed here, so
every module that has EC keys can sign. Every way out of the token
(``private_bytes``, ``private_numbers``, ``exchange``) is refused, and every
signature is checked against the CA certificate's public key before it is
used, so a token holding another key under the label cannot issue anything.

A process keeps one logged-in session per token, opened at first use and
shared by the keys on it, under a lock: a PKCS#11 session is not for
concurrent use, and the login belongs to the process, not to a session.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.utils import Buffer
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from justering.errors import ConfigError, SigningError

__all__ = [
    "KEY_REFERENCE_FILE",
    "TokenKey",
    "TokenReference",
    "generate_token_key",
]

KEY_REFERENCE_FILE = "ca-token.json"
"""In the CA folder, instead of ``ca-key.pem``: where the CA key is."""
_PIN_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN_LABEL_BYTES = 32
"""A token label is 32 bytes in PKCS#11 (CK_TOKEN_INFO)."""
_KEY_LABEL_BYTES = 64


@dataclass(frozen=True)
class TokenReference:
    """Where the CA key is: a key ``key_label`` in the token ``token_label`` of the
    PKCS#11 ``module``, whose user PIN is in the environment variable ``pin_env``."""

    module: Path
    token_label: str
    key_label: str
    pin_env: str

    def __post_init__(self) -> None:
        if not self.module.is_absolute():
            # dlopen would search the library path for a bare or relative name
            raise ConfigError(f"the PKCS#11 module must be an absolute path, not {self.module}")
        if not _PIN_ENV.fullmatch(self.pin_env):
            raise ConfigError(
                f"the PIN variable {self.pin_env!r} is not the name of an environment variable "
                "(letters, digits and _; give its name, never the PIN itself)"
            )
        for what, label, limit in (
            ("token label", self.token_label, _TOKEN_LABEL_BYTES),
            ("key label", self.key_label, _KEY_LABEL_BYTES),
        ):
            if not label.strip() or len(label.encode()) > limit:
                raise ConfigError(f"the {what} {label!r} must be 1 to {limit} bytes (UTF-8)")

    def to_json(self) -> str:
        return json.dumps(
            {
                "pkcs11_module": str(self.module),
                "token_label": self.token_label,
                "key_label": self.key_label,
                "pin_env": self.pin_env,
            },
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def read(cls, path: Path) -> TokenReference:
        """The reference kept in ``path``; a ConfigError naming what is wrong with it."""
        try:
            document = json.loads(path.read_text("utf-8"))
            fields = {
                name: document[name]
                for name in ("pkcs11_module", "token_label", "key_label", "pin_env")
            }
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"the CA's token reference {path} is unreadable: {error}") from None
        if not all(isinstance(value, str) for value in fields.values()):
            raise ConfigError(f"the CA's token reference {path}: every field must be a string")
        return cls(
            Path(fields["pkcs11_module"]),
            fields["token_label"],
            fields["key_label"],
            fields["pin_env"],
        )

    def describe(self) -> str:
        return f"key {self.key_label!r} in token {self.token_label!r} ({self.module})"

    def pin(self) -> str:
        """The user PIN, from the environment variable the reference names."""
        pin = os.environ.get(self.pin_env)
        if not pin:
            raise ConfigError(
                f"the PIN of the PKCS#11 token {self.token_label!r} is read from the "
                f"environment variable {self.pin_env}, which is not set"
            )
        return pin


class _Session:
    """A logged-in session on one token, for one process, used under ``lock``."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.lock = threading.Lock()
        self.keys: dict[str, Any] = {}


_SESSIONS: dict[tuple[str, str], _Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(reference: TokenReference) -> _Session:
    """The process's session on the token of ``reference``, opened at first use."""
    identity = (str(reference.module), reference.token_label)
    with _SESSIONS_LOCK:
        found = _SESSIONS.get(identity)
        if found is None:
            found = _Session(_open(reference))
            _SESSIONS[identity] = found
        return found


def _open(reference: TokenReference) -> Any:
    pin = reference.pin()
    if not reference.module.is_file():
        raise ConfigError(f"the PKCS#11 module {reference.module} does not exist")
    try:
        library = pkcs11.lib(str(reference.module))
    except pkcs11.PKCS11Error as error:
        raise ConfigError(f"cannot load the PKCS#11 module {reference.module}: {error}") from None
    try:
        token = library.get_token(token_label=reference.token_label)
    except pkcs11.NoSuchToken:
        labels = sorted({t.label for t in library.get_tokens() if t.label})
        raise ConfigError(
            f"no token labelled {reference.token_label!r} in the PKCS#11 module "
            f"{reference.module} (its tokens: {', '.join(map(repr, labels)) or 'none'})"
        ) from None
    except pkcs11.MultipleTokensReturned:
        raise ConfigError(
            f"more than one token labelled {reference.token_label!r} in {reference.module}"
        ) from None
    try:
        return token.open(rw=True, user_pin=pin)
    except (pkcs11.PinIncorrect, pkcs11.PinLenRange):
        raise ConfigError(
            f"the PKCS#11 token {reference.token_label!r} refused the PIN in "
            f"{reference.pin_env} (wrong PIN)"
        ) from None
    except (pkcs11.PinLocked, pkcs11.PinExpired) as error:
        raise ConfigError(
            f"the PIN of the PKCS#11 token {reference.token_label!r} is "
            f"{'locked' if isinstance(error, pkcs11.PinLocked) else 'expired'}: "
            "unlock or renew it with the token's tools"
        ) from None
    except pkcs11.PKCS11Error as error:
        raise ConfigError(
            f"cannot log in to the PKCS#11 token {reference.token_label!r}: "
            f"{type(error).__name__} {error}".rstrip()
        ) from None


def generate_token_key(reference: TokenReference) -> TokenKey:
    """A new EC P-256 key pair in the token, the private key sensitive and not
    extractable; refused when the token already has an object with the label."""
    opened = _session(reference)
    with opened.lock:
        session = opened.session
        if list(session.get_objects({Attribute.LABEL: reference.key_label})):
            raise ConfigError(
                f"the token {reference.token_label!r} already holds a key labelled "
                f"{reference.key_label!r}; choose another --key-label (nothing was changed)"
            )
        parameters = session.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        try:
            public, _private = parameters.generate_keypair(
                store=True,
                label=reference.key_label,
                id=secrets.token_bytes(16),
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )
        except pkcs11.PKCS11Error as error:
            raise ConfigError(
                f"the token {reference.token_label!r} could not make an EC P-256 key: "
                f"{type(error).__name__} {error}".rstrip()
            ) from None
        public_key = serialization.load_der_public_key(encode_ec_public_key(public))
    if not isinstance(public_key, ec.EllipticCurvePublicKey):  # pragma: no cover - EC asked
        raise ConfigError("the token returned a public key that is not EC")
    return TokenKey(reference, public_key)


class TokenKey(ec.EllipticCurvePrivateKey):
    """The CA's private key in a PKCS#11 token, as ``cryptography`` signs with keys.

    ``public_key`` is the CA certificate's; every signature is checked against it.
    """

    def __init__(self, reference: TokenReference, public_key: ec.EllipticCurvePublicKey) -> None:
        self.reference = reference
        self._public_key = public_key

    def __copy__(self) -> TokenKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenKey:
        return self

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    def sign(
        self,
        data: Buffer,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise SigningError(f"the token key signs ECDSA only, not {signature_algorithm!r}")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, Prehashed):
            raise SigningError("the token key hashes what it signs itself: no Prehashed")
        hasher = hashes.Hash(algorithm)
        hasher.update(data)
        digest = hasher.finalize()
        raw = self._sign_digest(digest)
        half = len(raw) // 2
        signature = encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )
        try:
            self._public_key.verify(signature, digest, ec.ECDSA(Prehashed(algorithm)))
        except InvalidSignature:
            raise ConfigError(
                f"the {self.reference.describe()} is not the key of the CA certificate: "
                "the token or the reference file was changed"
            ) from None
        return signature

    def _sign_digest(self, digest: bytes) -> bytes:
        opened = _session(self.reference)
        with opened.lock:
            try:
                key = opened.keys.get(self.reference.key_label)
                if key is None:
                    key = self._find(opened.session)
                    opened.keys[self.reference.key_label] = key
                signature: bytes = key.sign(digest, mechanism=Mechanism.ECDSA)
            except pkcs11.PKCS11Error as error:
                raise SigningError(
                    f"the PKCS#11 token failed to sign with the {self.reference.describe()}: "
                    f"{type(error).__name__} {error}".rstrip()
                ) from None
        return signature

    def _find(self, session: Any) -> Any:
        try:
            return session.get_key(
                object_class=ObjectClass.PRIVATE_KEY,
                key_type=KeyType.EC,
                label=self.reference.key_label,
            )
        except pkcs11.NoSuchKey:
            raise ConfigError(
                f"the token {self.reference.token_label!r} has no EC private key labelled "
                f"{self.reference.key_label!r}"
            ) from None
        except pkcs11.MultipleObjectsReturned:
            raise ConfigError(
                f"the token {self.reference.token_label!r} has more than one private key "
                f"labelled {self.reference.key_label!r}"
            ) from None

    def _refuse(self) -> NoReturn:
        raise SigningError(
            f"the CA key is the {self.reference.describe()} and cannot leave the token"
        )

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        self._refuse()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        self._refuse()

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        self._refuse()
