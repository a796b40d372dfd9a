"""TLS for the gateway from Key Vault, end to end on this machine: the controller's fetch-tls (from its
cloud-config, run as written) reads a PEM certificate's secret with the VM's identity from a Key Vault
and IMDS stand-in and writes one file, then `spotkit serve` started with the environment the stack
gives it serves HTTPS, and the official openai SDK, trusting only that certificate, lists the models."""

from __future__ import annotations

import datetime
import grp
import ipaddress
import json
import os
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.custom_data import render_controller_cloud_config
from tests.cli.test_cli import spotkit
from tests.cli.test_serve_cli import _free_port
from tests.infra.test_images import FakeAzure, controller_config, fake_azure, parse, run_boot_script
from tests.support.processes import stop_process

__all__ = ["fake_azure"]  # the Key Vault and IMDS stand-in, a fixture of the image tests


def self_signed() -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as Key Vault returns a PEM certificate's secret: the
    private key, then the certificate. Returns (that PEM, the certificate alone)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spotkit-gateway.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem + cert_pem, cert_pem


def fetch_tls(base_url: str, out: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    doc = parse(render_controller_cloud_config(controller_config(gateway_port=8443,
                                                                 gateway_tls_certificate="gateway-tls")))
    return run_boot_script(doc, "fetch-tls", "/etc/spotkit/controller.env",
                           ("KEY_VAULT_NAME", "AZURE_CLIENT_ID", "SPOTKIT_GATEWAY_TLS_SECRET"), base_url, tmp_path,
                           SPOTKIT_GATEWAY_TLS_CERT=str(out), SPOTKIT_TLS_GROUP=grp.getgrgid(os.getgid()).gr_name)


def test_fetch_tls_writes_the_certificate_and_keeps_it_through_a_bad_secret(fake_azure: str, tmp_path: Path) -> None:
    pem, _ = self_signed()
    FakeAzure.secrets["gateway-tls"] = pem
    out = tmp_path / "tls" / "gateway.pem"
    done = fetch_tls(fake_azure, out, tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == pem and stat.S_IMODE(out.stat().st_mode) == 0o640
    assert "PRIVATE KEY" not in done.stdout + done.stderr and FakeAzure.token not in done.stdout + done.stderr
    FakeAzure.secrets["gateway-tls"] = "MIIKcQIBAzCCCjcGCSqGSIb3DQEHAaCCCigEggokMIIKIDCCBNcGCSqGSIb3"  # a PFX's base64
    refused = fetch_tls(fake_azure, out, tmp_path)
    assert refused.returncode != 0 and "not a PEM certificate" in refused.stderr and out.read_text() == pem
    FakeAzure.deny = True
    refused = fetch_tls(fake_azure, out, tmp_path)
    assert refused.returncode != 0 and "no Key Vault token" in refused.stderr and out.read_text() == pem


def test_nothing_configured_is_nothing_to_do(tmp_path: Path) -> None:
    doc = parse(render_controller_cloud_config(controller_config(gateway_port=8443)))
    done = run_boot_script(doc, "fetch-tls", "/etc/spotkit/controller.env", (), "http://127.0.0.1:9", tmp_path)
    assert done.returncode == 0 and "no certificate configured" in done.stdout


def test_serve_takes_the_fetched_certificate_from_the_stacks_environment(fake_azure: str, tmp_path: Path) -> None:
    pem, cert = self_signed()
    FakeAzure.secrets["gateway-tls"] = pem
    out = tmp_path / "tls" / "gateway.pem"
    assert fetch_tls(fake_azure, out, tmp_path).returncode == 0
    (tmp_path / "ca.pem").write_text(cert)
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))  # this certificate and nothing else
    home = tmp_path / "home"
    key = json.loads(spotkit(home, "keys", "create", "team-tls", "--json").stdout)["key"]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_")}
    # What controller.env gives the unit: no --tls flags on its command line.
    env |= {"SPOTKIT_TRANSCRIBER": "simulated", "SPOTKIT_GATEWAY_TLS_CERT": str(out),
            "SPOTKIT_GATEWAY_TLS_KEY": str(out)}
    process = subprocess.Popen([sys.executable, "-m", "spotkit", "--home", str(home), "serve", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx2.get(f"{base}/healthz", timeout=2, verify=trust).status_code == 200:
                    break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, "spotkit serve did not answer over HTTPS"
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0,
                               http_client=openai.DefaultHttpxClient(verify=trust))
        assert "whisper-1" in [m.id for m in client.models.list().data]
        with pytest.raises(httpx2.HTTPError):  # plain HTTP on that port is not served
            httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
    finally:
        stop_process(process)
