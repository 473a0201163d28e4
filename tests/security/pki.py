"""A throwaway PKI made with the openssl CLI at test time: CA, server, client, and a rogue CA.

pki = make_pki(tmp_dir)
pki.server_cert  # CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by pki.ca_cert
pki.origin_cert  # SAN DNS:localhost only (for checking that TLS verifies the name)
pki.client_cert  # clientAuth, signed by the CA; pki.rogue_client_cert by a CA nobody trusts
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req", "-x509", *_EC, "-keyout", key.name, "-out", cert.name, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def _leaf(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions + "\n")
    _openssl("req", *_EC, "-keyout", key.name, "-out", csr.name, "-subj", f"/CN={name}", cwd=directory)
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", ca[0].name, "-CAkey", ca[1].name, "-CAcreateserial",
        "-out", cert.name, "-days", "2", "-extfile", ext.name,
        cwd=directory,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    origin_cert: Path
    origin_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca_cert: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "modgate-test-ca")
    rogue = _ca(directory, "rogue-ca")
    server = _leaf(
        directory, "localhost", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    )
    origin = _leaf(directory, "origin", ca, "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth")
    client = _leaf(directory, "checkout-backend", ca, "extendedKeyUsage=clientAuth")
    rogue_client = _leaf(directory, "rogue-client", rogue, "extendedKeyUsage=clientAuth")
    return Pki(
        ca_cert=ca[0],
        server_cert=server[0],
        server_key=server[1],
        origin_cert=origin[0],
        origin_key=origin[1],
        client_cert=client[0],
        client_key=client[1],
        rogue_ca_cert=rogue[0],
        rogue_client_cert=rogue_client[0],
        rogue_client_key=rogue_client[1],
    )
