"""A real RFC 3161 time-stamping authority with its CRL, over HTTP on 127.0.0.1.

certomancer's animator (a WSGI app) serves a small PKI made for the test run:
a TSA root CA, the TSA's certificate (with a CRL distribution point pointing
back at this service) and the root's CRL. Keys are generated into a temporary
folder; times are relative to now, so the TSA certificate is still valid ten
years from now (an archive is validated then), and the root longer.

Also serves ``/broken/500`` (an HTTP 500) and ``/broken/garbage`` (200 with a
body that is no timestamp reply), for the failure tests.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

ARCH = "justering-tsa"
TSA_ROOT_VALIDITY = timedelta(days=40 * 365)
TSA_CERT_VALIDITY = timedelta(days=15 * 365)


@dataclass(frozen=True)
class TsaService:
    """A running service: its URLs and the TSA's trust root."""

    base_url: str
    root: x509.Certificate
    server: BaseWSGIServer
    thread: threading.Thread
    requests: list[str]
    """``METHOD path`` of every request served, in order."""

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/{ARCH}/tsa/tsa"

    @property
    def crl_url(self) -> str:
        return f"{self.base_url}/{ARCH}/crls/root/latest.crl"

    def stop(self) -> None:
        """Stop serving and close the socket: afterwards connections are refused."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _config(base_url: str, now: datetime) -> dict[str, Any]:
    def when(delta: timedelta) -> str:
        return (now + delta).strftime("%Y-%m-%dT%H:%M:%S+0000")

    return {
        "external-url-prefix": base_url,
        "keysets": {
            "keys": {"keys": {"root": {"path": "root.key.pem"}, "tsa": {"path": "tsa.key.pem"}}}
        },
        "pki-architectures": {
            ARCH: {
                "keyset": "keys",
                "entity-defaults": {"country-name": "SE", "organization-name": "Test-TSA AB"},
                "entities": {
                    "root": {"common-name": "Test-TSA rot-CA"},
                    "tsa": {"common-name": "Test-TSA tidsstämpling"},
                },
                "certs": {
                    "root": {
                        "subject": "root",
                        "issuer": "root",
                        "validity": {
                            "valid-from": when(-timedelta(days=1)),
                            "valid-to": when(TSA_ROOT_VALIDITY),
                        },
                        "extensions": [
                            {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
                            {
                                "id": "key_usage",
                                "critical": True,
                                "smart-value": {
                                    "schema": "key-usage",
                                    "params": ["digital_signature", "key_cert_sign", "crl_sign"],
                                },
                            },
                        ],
                    },
                    "tsa": {
                        "issuer": "root",
                        "validity": {
                            "valid-from": when(-timedelta(days=1)),
                            "valid-to": when(TSA_CERT_VALIDITY),
                        },
                        "extensions": [
                            {
                                "id": "key_usage",
                                "critical": True,
                                "smart-value": {
                                    "schema": "key-usage",
                                    "params": ["digital_signature"],
                                },
                            },
                            {
                                "id": "extended_key_usage",
                                "critical": True,
                                "value": ["time_stamping"],
                            },
                            {
                                "id": "crl_distribution_points",
                                "smart-value": {
                                    "schema": "crl-dist-url",
                                    "params": {"crl-repo-names": ["root"]},
                                },
                            },
                        ],
                    },
                },
                "services": {
                    "crl-repo": {
                        "root": {
                            "for-issuer": "root",
                            "signing-key": "root",
                            "simulated-update-schedule": "P7D",
                        }
                    },
                    "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
                },
            }
        },
    }


def _write_key(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _broken(environ: dict[str, Any], start_response: Any) -> Any:
    request = Request(environ)
    if request.path == "/broken/500":
        response = Response("TSA down", status=500)
    else:
        response = Response(b"not a timestamp", mimetype="application/timestamp-reply")
    return response(environ, start_response)


def start_tsa_service(directory: Path) -> TsaService:
    """Generate the PKI in ``directory`` and serve it on a free loopback port."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("root", "tsa"):
        _write_key(directory / f"{name}.key.pem")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = CertomancerConfig(_config(base_url, datetime.now(UTC)), key_search_dir=str(directory))
    arch = config.get_pki_arch(ArchLabel(ARCH))
    animator = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False)

    requests: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        requests.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}")
        if environ.get("PATH_INFO", "").startswith("/broken/"):
            return _broken(environ, start_response)
        return animator(environ, start_response)

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = x509.load_der_x509_certificate(arch.get_cert(CertLabel("root")).dump())
    return TsaService(base_url=base_url, root=root, server=server, thread=thread, requests=requests)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def refused_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{_free_port()}/tsa"


@pytest.fixture(scope="module", name="tsa_service")
def tsa_service_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TsaService]:
    """A TSA service for one test module (stopped at its end, if still running)."""
    service = start_tsa_service(tmp_path_factory.mktemp("tsa"))
    yield service
    if service.thread.is_alive():
        service.stop()
