"""Boot images (images/, rendered by infra/custom_data.py): cloud-init's own schema validator accepts what
we render and rejects what is broken, the systemd units pass `systemd-analyze verify` and fit the 30 s
eviction notice, no secret material is ever in custom data, and the boot scripts do what they claim
(the data disk is formatted only when blank; Key Vault secrets land in a root-only file) — run here
against a file-backed disk and a local fake of IMDS and Key Vault. No network, nothing of Azure's."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from infra.custom_data import (
    IMAGES,
    MAX_CUSTOM_DATA_BYTES,
    PACKAGED_MODEL,
    SECRET_ENV_VARS,
    SIGTERM_GRACE_SECONDS,
    ControllerBootConfig,
    NodeBootConfig,
    encode_custom_data,
    render_controller_cloud_config,
    render_node_cloud_config,
)

CLIENT_ID = "0b9f4a0e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
WHEEL = "spotkit[gpu] @ https://spotkitdevsa01.blob.core.windows.net/wheels/spotkit-0.1.0-py3-none-any.whl"
SERVICE_USER = "spotkit-svc"
DATA_DISK = "/dev/disk/azure/scsi1/lun0"


def node_config(**overrides: Any) -> NodeBootConfig:
    values: dict[str, Any] = {
        "node_name": "spotkit-slot-1", "queue_url": "azure-queue://spotkitdevsa01/work",
        "store_url": "azure-blob://spotkitdevsa01/spotkit", "identity_client_id": CLIENT_ID,
        "key_vault_name": "spotkit-dev-kv", "spotkit_pip_spec": WHEEL, "secret_names": ("alert-webhook", "hf-token"),
    }
    return NodeBootConfig(**{**values, **overrides})


def controller_config(**overrides: Any) -> ControllerBootConfig:
    values: dict[str, Any] = {
        "queue_url": "azure-queue://spotkitdevsa01/work", "store_url": "azure-blob://spotkitdevsa01/spotkit",
        "identity_client_id": CLIENT_ID, "key_vault_name": "spotkit-dev-kv", "spotkit_pip_spec": "spotkit",
        "subscription_id": "11111111-2222-3333-4444-555555555555", "resource_group": "spotkit-dev-rg",
        "slot_vm_names": ("spotkit-slot-1", "spotkit-slot-2"), "secret_names": ("alert-webhook",),
    }
    return ControllerBootConfig(**{**values, **overrides})


def render(kind: str) -> str:
    return render_node_cloud_config(node_config()) if kind == "node" else render_controller_cloud_config(
        controller_config())


def parse(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def written(doc: dict[str, Any], path: str) -> dict[str, Any]:
    matches = [f for f in doc["write_files"] if f["path"] == path]
    assert len(matches) == 1, f"{path} is written {len(matches)} times"
    entry: dict[str, Any] = matches[0]
    return entry


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """``[Section]`` -> key -> every value (Exec lines repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def env_file(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def units(kind: str) -> dict[str, str]:
    doc = parse(render(kind))
    return {Path(f["path"]).name: f["content"] for f in doc["write_files"] if f["path"].endswith(".service")}


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert match, f"unexpected time value {value!r}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


@pytest.fixture(scope="module")
def cloud_init() -> str:
    found = shutil.which("cloud-init") or ("/usr/bin/cloud-init" if Path("/usr/bin/cloud-init").exists() else None)
    if found is None:
        pytest.fail("cloud-init is not installed, so the rendered cloud-config cannot be validated; "
                    "install Debian's package (`apt-get install -y cloud-init`; `make test` does)")
    return found


def schema(cloud_init: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


# --- cloud-init --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["node", "controller"])
def test_rendered_document_is_cloud_config_that_cloud_init_accepts(kind: str, cloud_init: str,
                                                                  tmp_path: Path) -> None:
    text = render(kind)
    assert text.splitlines()[0] == "#cloud-config"
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    result = schema(cloud_init, path)
    assert result.returncode == 0, f"cloud-init schema rejected {kind}:\n{result.stdout}{result.stderr}"
    assert "Valid cloud-config" in result.stdout


@pytest.mark.parametrize("breakage", ["mounts-not-a-list", "bootcmd-not-a-list", "not-yaml", "no-header"])
def test_cloud_init_schema_rejects_broken_documents(breakage: str, cloud_init: str, tmp_path: Path) -> None:
    """The validator above is not a rubber stamp: the same call fails on our document, broken."""
    doc = parse(render("node"))
    if breakage == "mounts-not-a-list":
        doc["mounts"] = "oops"
    elif breakage == "bootcmd-not-a-list":
        doc["bootcmd"] = 5
    text = "#cloud-config\n" + yaml.safe_dump(doc)
    if breakage == "not-yaml":
        text += "write_files: [\n"
    elif breakage == "no-header":
        text = text.removeprefix("#cloud-config\n")
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = schema(cloud_init, path)
    assert result.returncode != 0, f"cloud-init schema accepted a broken document ({breakage}):\n{result.stdout}"


def test_node_document_installs_mounts_and_starts_the_agent() -> None:
    doc = parse(render("node"))
    assert doc["package_update"] is True
    assert {"python3-venv", "python3-pip", "curl", "python3.11", "python3.11-venv"} <= set(doc["packages"])
    assert doc["users"][0] == "default"  # keeps the admin user Azure provisions
    assert {"name": SERVICE_USER, "system": True} .items() <= doc["users"][1].items()
    runcmd = [" ".join(cmd) for cmd in doc["runcmd"]]
    assert runcmd[-2:] == ["systemctl daemon-reload", "systemctl enable --now --no-block spotkit-agent.service"]
    install = next(cmd for cmd in doc["runcmd"] if "/opt/spotkit/bin/install-spotkit" in cmd)
    assert install == ["env", "PIP_CACHE_DIR=/mnt/spotkit/pip-cache", "/opt/spotkit/bin/install-spotkit", WHEEL]
    env = written(doc, "/etc/spotkit/agent.env")
    assert (env["permissions"], env["owner"]) == ("0600", "root:root")
    values = env_file(env["content"])
    assert values == {
        "SPOTKIT_QUEUE": "azure-queue://spotkitdevsa01/work", "SPOTKIT_STORE": "azure-blob://spotkitdevsa01/spotkit",
        "SPOTKIT_NODE_NAME": "spotkit-slot-1", "SPOTKIT_HOME": "/mnt/spotkit/state",
        "SPOTKIT_CACHE_DIR": "/mnt/spotkit/cache", "SPOTKIT_SCHEDULED_EVENTS": "on", "SPOTKIT_BOOT_CLOCK": "os",
        "SPOTKIT_DEVICE": "cuda",
        "SPOTKIT_COMPUTE_TYPE": "int8_float16", "SPOTKIT_MODEL": "large-v3",
        "SPOTKIT_MODEL_PATH": "/mnt/spotkit/models/large-v3", "SPOTKIT_METRICS_PORT": "9400",
        "SPOTKIT_SIGTERM_GRACE_SECONDS": "20", "HF_HOME": "/mnt/spotkit/models", "AZURE_CLIENT_ID": CLIENT_ID,
        "KEY_VAULT_NAME": "spotkit-dev-kv",
        "KEY_VAULT_SECRETS": "alert-webhook:SPOTKIT_ALERT_WEBHOOK,hf-token:HF_TOKEN", "SPOTKIT_TRANSLATOR": "none",
    }
    for path in ("/opt/spotkit/bin/fetch-secrets", "/opt/spotkit/bin/install-spotkit", "/opt/spotkit/bin/fetch-model"):
        assert written(doc, path)["permissions"] == "0755"
    for unit in ("spotkit-agent.service", "spotkit-models.service"):
        assert written(doc, f"/etc/systemd/system/{unit}")["content"].startswith("# ")


def test_agent_environment_is_what_the_runtime_reads() -> None:
    """Every SPOTKIT_* variable is a runtime setting, and the runtime accepts the whole environment."""
    from runtime.config import Settings, load_settings

    values = env_file(written(parse(render("node")), "/etc/spotkit/agent.env")["content"])
    known = {f"SPOTKIT_{f.name.upper()}" for f in dataclasses.fields(Settings)} | {"SPOTKIT_QUEUE", "SPOTKIT_STORE"}
    assert {k for k in values if k.startswith("SPOTKIT_")} <= known
    settings = load_settings({**values, "SPOTKIT_ALERT_WEBHOOK": "https://alerts.example.invalid/hook"})
    assert (settings.node_name, settings.vm_name, settings.device) == ("spotkit-slot-1", "spotkit-slot-1", "cuda")
    assert settings.sigterm_grace_seconds == SIGTERM_GRACE_SECONDS and settings.scheduled_events == "on"


def test_packaged_model_needs_no_download() -> None:
    from runtime.models import PACKAGED_MODEL as RUNTIME_PACKAGED_MODEL

    assert PACKAGED_MODEL == RUNTIME_PACKAGED_MODEL
    doc = parse(render_node_cloud_config(node_config(model=PACKAGED_MODEL)))
    assert "SPOTKIT_MODEL_PATH" not in env_file(written(doc, "/etc/spotkit/agent.env")["content"])
    doc = parse(render_node_cloud_config(node_config(model="Systran/faster-distil-whisper-large-v3")))
    values = env_file(written(doc, "/etc/spotkit/agent.env")["content"])
    assert values["SPOTKIT_MODEL_PATH"] == "/mnt/spotkit/models/Systran--faster-distil-whisper-large-v3"


def test_controller_document_installs_and_starts_the_controller() -> None:
    doc = parse(render("controller"))
    assert doc["package_update"] is True and {"python3-venv", "python3-pip", "curl"} <= set(doc["packages"])
    assert not {"mounts", "bootcmd", "disk_setup", "fs_setup"} & doc.keys()  # no data disk on the controller
    assert [" ".join(cmd) for cmd in doc["runcmd"]] == [
        "/opt/spotkit/bin/install-spotkit spotkit", "systemctl daemon-reload",
        "systemctl enable --now spotkit-controller.service"]
    env = written(doc, "/etc/spotkit/controller.env")
    assert env["permissions"] == "0600"
    values = env_file(env["content"])
    assert values["SPOTKIT_SLOT_VMS"] == "spotkit-slot-1,spotkit-slot-2"
    assert values["SPOTKIT_SUBSCRIPTION_ID"] == "11111111-2222-3333-4444-555555555555"
    assert values["SPOTKIT_RESOURCE_GROUP"] == "spotkit-dev-rg" and values["AZURE_CLIENT_ID"] == CLIENT_ID
    assert values["KEY_VAULT_SECRETS"] == "alert-webhook:SPOTKIT_ALERT_WEBHOOK"
    assert "SPOTKIT_GATEWAY_PORT" not in values  # the gateway is opt-in (the stack's gatewayPort)
    # Segments ask for the fleet's model by name: the API workers and the gateway must name the same one.
    assert values["SPOTKIT_MODEL"] == "tiny.en"
    large = env_file(written(parse(render_controller_cloud_config(controller_config(model="large-v3"))),
                             "/etc/spotkit/controller.env")["content"])
    assert large["SPOTKIT_MODEL"] == "large-v3"


def test_controller_document_starts_the_gateway_only_when_a_port_is_set() -> None:
    doc = parse(render_controller_cloud_config(controller_config(gateway_port=8443)))
    assert [" ".join(cmd) for cmd in doc["runcmd"]][-1] == "systemctl enable --now spotkit-gateway.service"
    assert env_file(written(doc, "/etc/spotkit/controller.env")["content"])["SPOTKIT_GATEWAY_PORT"] == "8443"
    with pytest.raises(ValueError, match="gateway_port"):
        render_controller_cloud_config(controller_config(gateway_port=70000))


def test_node_and_controller_share_the_same_boot_scripts() -> None:
    node, controller = parse(render("node")), parse(render("controller"))
    for path in ("/opt/spotkit/bin/fetch-secrets", "/opt/spotkit/bin/install-spotkit"):
        assert written(node, path) == written(controller, path), f"{path} drifted between node and controller"


# --- the data disk -----------------------------------------------------------------------------------------


def test_node_mounts_the_data_disk_with_nofail_and_never_overwrites() -> None:
    text = render("node")
    doc = parse(text)
    mounts = doc["mounts"]
    data = [m for m in mounts if m[0] == DATA_DISK]
    assert len(data) == 1
    device, path, fstype, options, *_ = data[0]
    assert (path, fstype) == ("/mnt/spotkit", "ext4")
    assert "nofail" in options.split(",")
    # cloud-init appends its ephemeral0 -> /mnt default after our entries; listing it first keeps the
    # first-boot `mount -a` from mounting the temp disk over /mnt/spotkit.
    assert mounts.index(["ephemeral0", "/mnt"]) < mounts.index(data[0])
    assert "overwrite: true" not in text.lower() and "overwrite" not in json.dumps(doc.get("fs_setup", []))
    prep = doc["bootcmd"][0]
    assert prep[:2] == ["sh", "-c"] and prep[4] == device  # the disk formatted is the disk mounted
    lun3 = parse(render_node_cloud_config(node_config(data_disk_lun=3, mount_path="/srv/spotkit")))
    assert ["/dev/disk/azure/scsi1/lun3", "/srv/spotkit"] == lun3["mounts"][1][:2]
    assert "RequiresMountsFor=/srv/spotkit" in written(lun3, "/etc/systemd/system/spotkit-agent.service")["content"]


def _prep_disk(device: Path) -> subprocess.CompletedProcess[str]:
    command = parse(render("node"))["bootcmd"][0]
    return subprocess.run([*command[:4], str(device), "1"], capture_output=True, text=True, timeout=60, check=False)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_disk_preparation_formats_only_a_blank_disk(tmp_path: Path) -> None:
    missing = [tool for tool in ("mkfs.ext4", "mkfs.ext2", "blkid", "cmp") if shutil.which(tool) is None]
    assert not missing, f"install e2fsprogs, util-linux and diffutils to test disk preparation (missing {missing})"
    blank = tmp_path / "blank.img"
    with blank.open("wb") as f:
        f.truncate(64 << 20)
    result = _prep_disk(blank)
    assert result.returncode == 0 and "creating ext4" in result.stdout, result.stderr
    probe = subprocess.run(["blkid", "-p", "-o", "export", str(blank)], capture_output=True, text=True, check=True)
    assert "TYPE=ext4" in probe.stdout and "LABEL=spotkit" in probe.stdout
    # Second boot, re-created VM: the filesystem is kept byte for byte.
    formatted = _digest(blank)
    result = _prep_disk(blank)
    assert result.returncode == 0 and "keeping it" in result.stdout and _digest(blank) == formatted
    # A filesystem that is not ours (other type, other label) is never replaced either.
    foreign = tmp_path / "foreign.img"
    with foreign.open("wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-L", "somebody", str(foreign)], check=True, capture_output=True)
    before = _digest(foreign)
    result = _prep_disk(foreign)
    assert result.returncode == 0 and "keeping it" in result.stdout and _digest(foreign) == before
    # Data without any signature blkid knows: refused, not formatted.
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"spotkit test data, not a filesystem\n" * 40_000)
    before = _digest(junk)
    result = _prep_disk(junk)
    assert result.returncode == 0 and "refusing to format" in result.stderr and _digest(junk) == before
    # No disk at all (not attached yet): gives up after the wait, formats nothing, does not fail the boot.
    result = _prep_disk(tmp_path / "absent")
    assert result.returncode == 0 and "not found" in result.stderr


# --- secrets -----------------------------------------------------------------------------------------------


def test_config_classes_cannot_carry_secret_values() -> None:
    allowed = {"key_vault_name", "secret_names"}
    for cls in (NodeBootConfig, ControllerBootConfig):
        for field in dataclasses.fields(cls):
            if field.name in allowed:
                continue
            assert not re.search(r"token|password|passwd|key|secret|sas|connection|credential|webhook", field.name), (
                f"{cls.__name__}.{field.name} looks like it could carry a secret value")


def test_no_secret_material_in_custom_data() -> None:
    fake: dict[str, Any] = {
        "queue_url": "azure-queue://zzfakeacct7731/zzqueue7731", "store_url": "azure-blob://zzfakeacct7731/zzbox7731",
        "identity_client_id": "77310000-aaaa-4bbb-8ccc-dddddddd7731", "key_vault_name": "zz-kv-7731",
        "spotkit_pip_spec": "spotkit[gpu] @ https://zz7731.example.invalid/spotkit-9.9.9-py3-none-any.whl",
        "secret_names": tuple(SECRET_ENV_VARS),
    }
    documents = [
        render_node_cloud_config(NodeBootConfig(node_name="zz-node-7731", model="zz-model-7731",
                                                compute_type="zz_compute", metrics_port=7731, **fake)),
        render_controller_cloud_config(ControllerBootConfig(
            subscription_id="77310000-1111-4222-8333-444444447731", resource_group="zz-rg-7731",
            slot_vm_names=("zz-node-7731",), **fake)),
    ]
    forbidden = [r"AccountKey=", r"SharedAccessSignature", r"\bsig=", r"-----BEGIN", r"\bhf_[A-Za-z0-9]{8,}",
                 r"hooks\.slack\.com", r"webhook\.office\.com", r"discord(app)?\.com/api/webhooks",
                 r"\bsk-[A-Za-z0-9]{16,}", r"\beyJ[A-Za-z0-9_-]{10,}", r"client_secret", r"password"]
    for text in documents:
        assert "zz-kv-7731" in text and "77310000-aaaa-4bbb-8ccc-dddddddd7731" in text  # names do go in
        for pattern in forbidden:
            assert not re.search(pattern, text, re.IGNORECASE), f"custom data matches {pattern!r}"


class FakeAzure(BaseHTTPRequestHandler):
    """IMDS's token endpoint and Key Vault's get-secret, as far as fetch-secrets uses them."""

    secrets: ClassVar[dict[str, str]] = {}
    token: ClassVar[str] = "fake-token-7731"
    deny: ClassVar[bool] = False

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/metadata/identity/oauth2/token":
            ok = (self.headers.get("Metadata") == "true" and query.get("client_id") == CLIENT_ID
                  and query.get("resource") == "https://vault.azure.net" and not self.deny)
            self.reply(200 if ok else 400, {"access_token": self.token} if ok else {"error": "bad request"})
        elif url.path.startswith("/secrets/") and query.get("api-version") == "7.4":
            name = url.path.removeprefix("/secrets/")
            if self.headers.get("Authorization") != f"Bearer {self.token}":
                self.reply(401, {"error": "unauthorized"})
            elif name not in self.secrets:
                self.reply(404, {"error": "SecretNotFound"})
            else:
                self.reply(200, {"value": self.secrets[name], "id": f"https://vault/secrets/{name}/1"})
        else:
            self.reply(404, {"error": "no such endpoint"})

    def reply(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_azure() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAzure)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeAzure.deny = False
    FakeAzure.secrets = {"alert-webhook": "https://alerts.example.invalid/T0/B0/c0ffee?x=1&y=$HOME",
                         "hf-token": "hf_" + "x" * 30}
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_boot_script(doc: dict[str, Any], name: str, env_path: str, keys: tuple[str, ...], base_url: str,
                    tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run /opt/spotkit/bin/NAME as *doc* (a rendered cloud-config) writes it, with the *keys* of the
    env file it writes at *env_path*, against the IMDS and Key Vault stand-in at *base_url*."""
    assert shutil.which("curl") and shutil.which("python3"), f"install curl and python3 to test {name}"
    script = tmp_path / name
    script.write_text(written(doc, f"/opt/spotkit/bin/{name}")["content"])
    script.chmod(0o755)
    env = {k: v for k, v in env_file(written(doc, env_path)["content"]).items() if k in keys}
    env |= {"PATH": os.environ["PATH"], "SPOTKIT_IMDS_ENDPOINT": base_url, "SPOTKIT_KEY_VAULT_URL": base_url,
            **extra}
    return subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=120, check=False)


def _fetch_secrets(base_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_boot_script(parse(render("node")), "fetch-secrets", "/etc/spotkit/agent.env",
                           ("KEY_VAULT_NAME", "KEY_VAULT_SECRETS", "AZURE_CLIENT_ID"), base_url, tmp_path,
                           SPOTKIT_SECRETS_FILE=str(tmp_path / "etc" / "secrets.env"))


def test_fetch_secrets_writes_a_root_only_env_file(fake_azure: str, tmp_path: Path) -> None:
    result = _fetch_secrets(fake_azure, tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "etc" / "secrets.env"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text() == (f"SPOTKIT_ALERT_WEBHOOK='{FakeAzure.secrets['alert-webhook']}'\n"
                               f"HF_TOKEN='{FakeAzure.secrets['hf-token']}'\n")
    for value in FakeAzure.secrets.values():  # values never reach the journal
        assert value not in result.stdout + result.stderr
    assert FakeAzure.token not in result.stdout + result.stderr


def test_fetch_secrets_keeps_the_last_file_when_key_vault_fails(fake_azure: str, tmp_path: Path) -> None:
    assert _fetch_secrets(fake_azure, tmp_path).returncode == 0
    out = tmp_path / "etc" / "secrets.env"
    good = out.read_text()
    FakeAzure.deny = True
    result = _fetch_secrets(fake_azure, tmp_path)
    assert result.returncode != 0 and "no Key Vault token" in result.stderr and out.read_text() == good
    FakeAzure.deny = False
    del FakeAzure.secrets["hf-token"]
    result = _fetch_secrets(fake_azure, tmp_path)
    assert result.returncode != 0 and "hf-token" in result.stderr and out.read_text() == good
    FakeAzure.secrets["hf-token"] = "it's\nbroken"  # would break the env file: refused
    result = _fetch_secrets(fake_azure, tmp_path)
    assert result.returncode != 0 and "quote or newline" in result.stderr and out.read_text() == good
    assert "broken" not in result.stderr


# --- systemd units -----------------------------------------------------------------------------------------

PROVIDED_ON_THE_VM = {"/opt/spotkit/venv/bin/spotkit", "/opt/spotkit/bin/fetch-secrets", "/opt/spotkit/bin/fetch-tls",
                      "/opt/spotkit/bin/fetch-model", "/usr/bin/nvidia-modprobe"}


@pytest.mark.parametrize(("kind", "unit"), [("node", "spotkit-agent.service"), ("node", "spotkit-models.service"),
                                            ("controller", "spotkit-controller.service"),
                                            ("controller", "spotkit-gateway.service")])
def test_units_pass_systemd_analyze_verify(kind: str, unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # Executables that only exist on the VM (installed by cloud-init, or by the NVIDIA driver extension)
    # become /bin/true for this run; anything else must exist here too, and every other line is verified
    # as rendered. The unit the agent Wants= is next to it, so the reference resolves.
    swapped: set[str] = set()

    def local(match: re.Match[str]) -> str:
        if Path(match[2]).exists():
            return match[0]
        swapped.add(match[2])
        return f"{match[1]}/bin/true"

    for name, text in units(kind).items():
        (tmp_path / name).write_text(re.sub(r"(?m)^(Exec\w+=[-+@:!]*)(\S+)", local, text))
    result = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True,
                            timeout=120, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"systemd-analyze verify {unit}:\n{output}"
    assert swapped <= PROVIDED_ON_THE_VM, f"unit runs executables that nothing installs: {swapped - PROVIDED_ON_THE_VM}"


def test_systemd_analyze_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    text = units("node")["spotkit-agent.service"].replace("TimeoutStopSec=25", "TimeoutStopSec=soon")
    (tmp_path / "broken.service").write_text(re.sub(r"(?m)^(Exec\w+=[-+@:!]*)(\S+)", r"\1/bin/true", text))
    result = subprocess.run([analyze, "verify", str(tmp_path / "broken.service")], capture_output=True, text=True,
                            timeout=120, check=False)
    assert "TimeoutStopSec" in result.stdout + result.stderr or "soon" in result.stdout + result.stderr


def test_agent_stops_inside_the_eviction_notice() -> None:
    node = units("node")
    service = parse_unit(node["spotkit-agent.service"])["Service"]
    stop = seconds(service["TimeoutStopSec"][-1])
    assert SIGTERM_GRACE_SECONDS < stop <= 25 < 30  # drain, then SIGKILL, all inside Azure's 30 s notice
    assert service["Restart"] == ["always"] and service["RestartSec"] == ["5"]
    assert service["KillSignal"] == ["SIGTERM"] and service["KillMode"] == ["mixed"]
    assert service["ExecStart"] == ["/opt/spotkit/venv/bin/spotkit agent"]
    assert "-+/opt/spotkit/bin/fetch-secrets" in service["ExecStartPre"]
    # As the service user (no "+": the .pub files are world-readable), and never fatal ("-").
    assert "-/opt/spotkit/venv/bin/spotkit node publish-host-keys" in service["ExecStartPre"]
    assert service["EnvironmentFile"] == ["/etc/spotkit/agent.env", "-/etc/spotkit/secrets.env"]
    unit = parse_unit(node["spotkit-agent.service"])
    assert unit["Unit"]["RequiresMountsFor"] == ["/mnt/spotkit"]
    assert "network-online.target" in unit["Unit"]["After"][0] and "network-online.target" in unit["Unit"]["Wants"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize(("kind", "unit"), [("node", "spotkit-agent.service"), ("node", "spotkit-models.service"),
                                            ("controller", "spotkit-controller.service"),
                                            ("controller", "spotkit-gateway.service")])
def test_units_run_unprivileged_hardened_and_keep_the_gpu(kind: str, unit: str) -> None:
    service = parse_unit(units(kind)[unit])["Service"]
    assert service["User"] == [SERVICE_USER] and service["Group"] == [SERVICE_USER]
    assert service["NoNewPrivileges"] == ["yes"] and service["PrivateTmp"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert "PrivateDevices" not in service and "DevicePolicy" not in service  # CUDA needs /dev/nvidia*
    if unit == "spotkit-gateway.service":  # systemd expands the port from controller.env
        serve = "/opt/spotkit/venv/bin/spotkit serve --host 0.0.0.0 --port ${SPOTKIT_GATEWAY_PORT}"
        assert service["ExecStart"] == [serve]
        assert service["EnvironmentFile"][0] == "/etc/spotkit/controller.env"
    elif kind == "controller":
        assert service["Restart"] == ["always"] and service["RestartSec"] == ["10"]
        assert service["ExecStart"] == ["/opt/spotkit/venv/bin/spotkit controller run"]
    else:
        assert service["ReadWritePaths"] == ["/mnt/spotkit"]


def test_unit_templates_only_use_known_placeholders() -> None:
    for path in sorted(IMAGES.glob("*/*.service")):
        placeholders = set(re.findall(r"(?<!\$)\$\{(\w+)\}", path.read_text()))  # "$${" is a literal "${"
        assert placeholders <= {"mount_path"}, f"{path.name}: unknown placeholders {placeholders}"


# --- size and parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["node", "controller"])
def test_custom_data_is_far_below_azure_limit(kind: str) -> None:
    text = render(kind)
    encoded = encode_custom_data(text)
    decoded = base64.b64decode(encoded)
    assert decoded.decode() == text
    assert len(decoded) < 16 * 1024 < MAX_CUSTOM_DATA_BYTES


def test_encode_custom_data_refuses_oversized_documents() -> None:
    assert base64.b64decode(encode_custom_data("x" * MAX_CUSTOM_DATA_BYTES)) == b"x" * MAX_CUSTOM_DATA_BYTES
    with pytest.raises(ValueError, match="65,536 bytes decoded; Azure accepts at most 65,535"):
        encode_custom_data("#cloud-config\n" + "x" * (MAX_CUSTOM_DATA_BYTES + 1 - len("#cloud-config\n")))


@pytest.mark.parametrize(("overrides", "field"), [
    ({"node_name": "spotkit slot 1"}, "node_name"),
    ({"node_name": "-leading-dash"}, "node_name"),
    ({"queue_url": "https://spotkitdevsa01.queue.core.windows.net/work"}, "queue_url"),
    ({"queue_url": "sqlite:///tmp/queue.db"}, "queue_url"),
    ({"store_url": "azure-queue://spotkitdevsa01/spotkit"}, "store_url"),
    ({"spotkit_pip_spec": "spotkit\nruncmd: [reboot]"}, "spotkit_pip_spec"),
    ({"spotkit_pip_spec": "spotkit'; reboot; '"}, "spotkit_pip_spec"),
    ({"spotkit_pip_spec": " "}, "spotkit_pip_spec"),
    ({"identity_client_id": "not-a-guid"}, "identity_client_id"),
    ({"key_vault_name": "kv.evil.example"}, "key_vault_name"),
    ({"secret_names": ("storage-account-key",)}, "secret_names"),
    ({"secret_names": ("hf-token", "hf-token")}, "secret_names"),
    ({"model": "large v3"}, "model"),
    ({"compute_type": "int8 float16"}, "compute_type"),
    ({"metrics_port": 70000}, "metrics_port"),
    ({"metrics_port": True}, "metrics_port"),
    ({"mount_path": "/mnt"}, "mount_path"),
    ({"mount_path": "relative/path"}, "mount_path"),
    ({"mount_path": "/mnt/../etc"}, "mount_path"),
    ({"data_disk_lun": 64}, "data_disk_lun"),
])
def test_bad_node_parameters_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"NodeBootConfig\.{field}\b"):
        render_node_cloud_config(node_config(**overrides))


@pytest.mark.parametrize(("overrides", "field"), [
    ({"slot_vm_names": ()}, "slot_vm_names"),
    ({"slot_vm_names": ("spotkit-slot-1", "bad name")}, "slot_vm_names"),
    ({"subscription_id": "sub"}, "subscription_id"),
    ({"resource_group": "rg with spaces"}, "resource_group"),
    ({"queue_url": "azure-queue://UPPER/work"}, "queue_url"),
    ({"spotkit_pip_spec": "spotkit\r\n"}, "spotkit_pip_spec"),
])
def test_bad_controller_parameters_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"ControllerBootConfig\.{field}\b"):
        render_controller_cloud_config(controller_config(**overrides))
