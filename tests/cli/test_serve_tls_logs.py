"""``tether serve --tls-cert/--tls-key`` (HTTPS) and ``--log-format json`` on ``tether serve``
and ``tether worker``: real processes, a real certificate, real HTTPS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120.0


def _self_signed(tmp: Path, name: str = "srv") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    return {**env, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), **extra}


def _tether(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_serve_over_https_with_json_logs(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    proc = _tether(
        tmp_path,
        "--json",
        "serve",
        "--port",
        "0",
        "--store",
        store,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--log-format",
        "json",
        "--log-level",
        "info",
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first, proc.communicate(timeout=DEADLINE)[1]
        url = json.loads(first)["url"]
        assert url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=url, verify=trusted, timeout=DEADLINE) as https:
            assert https.get("/healthz").status_code == 200
            assert https.get("/readyz").json()["status"] == "ready"
        with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused
            httpx.get(f"{url}/healthz", timeout=DEADLINE)
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(url.replace("https://", "http://") + "/healthz", timeout=DEADLINE)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    lines = _json_lines(err)  # every stderr line is a JSON object
    assert lines, err
    assert all({"time", "level", "logger", "message", "process"} <= set(x) for x in lines)
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    assert any("GET /healthz" in str(x["message"]) for x in access)  # info: access lines too


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--tls-cert", "CERT"], "needs both --tls-cert"),
        (["--tls-cert", "CERT", "--tls-key", "nope.key"], "cannot read"),
        (["--tls-cert", "CERT", "--tls-key", "OTHER"], "cannot use --tls-cert"),
    ],
)
def test_serve_refuses_tls_files_it_cannot_use(tmp_path: Path, flags: list[str], says: str) -> None:
    cert, _ = _self_signed(tmp_path)
    _, other = _self_signed(tmp_path, "other")  # a key of another certificate
    args = [{"CERT": str(cert), "OTHER": str(other)}.get(f, f) for f in flags]
    proc = _tether(tmp_path, "serve", "--port", "0", "--store", f"sqlite:///{tmp_path}/r.db", *args)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2 and says in err, err


def test_worker_logs_json_lines(tmp_path: Path) -> None:
    proc = _tether(
        tmp_path,
        "--json",
        "worker",
        "--app",
        "tests.worker.worker_app:workflows",
        "--store",
        f"sqlite:///{tmp_path / 'runs.db'}",
        "--probe-port",
        "0",
        TETHER_LOG_FORMAT="json",
        TETHER_LOG_LEVEL="info",
        TETHER_WORKER_ID="logged-1",
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["worker"] == "logged-1"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    lines = _json_lines(err)
    messages = [(x["level"], x["logger"], str(x["message"])) for x in lines]
    assert any(lvl == "info" and "probes at http://" in m for lvl, _, m in messages), messages
    assert any(lvl == "warning" and "SIGTERM, draining" in m for lvl, _, m in messages), messages


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    proc = _tether(
        tmp_path,
        "worker",
        "--app",
        "tests.worker.worker_app:workflows",
        "--store",
        f"sqlite:///{tmp_path / 'runs.db'}",
        TETHER_LOG_FORMAT="yaml",
    )
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2 and "TETHER_LOG_FORMAT must be one of text, json" in err
