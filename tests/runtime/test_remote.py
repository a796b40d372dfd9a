"""The remote-command parts that decide without a network: addresses, host-key records and the
known_hosts built from them, settings, the exit rule, node selection, the ssh command line. The same
paths against real sshd servers: tests/cli/test_node_remote_cli.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runtime.errors import ConfigError, RemoteError
from runtime.records import Heartbeat, NodeHostKeys, host_keys_key, load, read_host_keys
from runtime.remote.addresses import Endpoint, parse_addresses, parse_endpoint, parse_jump_host
from runtime.remote.fleet import NodeResult, PrefixedLines, RemoteFleet, overall_exit, select_nodes
from runtime.remote.hostkeys import (
    fingerprint,
    known_hosts_lines,
    parse_public_key,
    publish_host_keys,
    read_host_key_files,
)
from runtime.remote.runner import Jump, Target
from runtime.remote.settings import DEFAULT_LOGS_COMMAND, load_remote_settings
from runtime.remote.ssh_argv import ssh_argv
from runtime.store.file_store import FileStore
from tests.support.sshd import keygen


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real keys from ssh-keygen: an ed25519 and an ecdsa host key pair."""
    folder = tmp_path_factory.mktemp("keys")
    return {"ed25519": keygen(folder / "ssh_host_ed25519_key"),
            "ecdsa": keygen(folder / "ssh_host_ecdsa_key", "ecdsa")}


def test_addresses_parse_names_hosts_and_ports() -> None:
    found = parse_addresses("slot-1=10.0.1.4, slot-2=10.0.1.5:2222,local-1=127.0.0.1:2201,v6=[::1]:22,"
                            "dns=node.internal")
    assert found == {"slot-1": Endpoint("10.0.1.4"), "slot-2": Endpoint("10.0.1.5", 2222),
                     "local-1": Endpoint("127.0.0.1", 2201), "v6": Endpoint("::1"), "dns": Endpoint("node.internal")}
    assert [e.known_hosts_name() for e in found.values()] == ["10.0.1.4", "[10.0.1.5]:2222", "[127.0.0.1]:2201",
                                                              "::1", "node.internal"]
    assert parse_endpoint("fe80::1", "X") == Endpoint("fe80::1") and str(Endpoint("::1", 2200)) == "[::1]:2200"
    assert parse_addresses("") == {}


@pytest.mark.parametrize("text, says", [
    ("slot-1", "is not NODE=HOST[:PORT]"),
    ("slot-1=10.0.1.4,slot-1=10.0.1.5", "slot-1 is listed twice"),
    ("a=10.0.1.4,b=10.0.1.4:22", "a and b are both at 10.0.1.4:22"),
    ("slot 1=10.0.1.4", "not a node name"),
    ("slot-1=10.0.1.4:0", "a port is 1..65535"),
    ("slot-1=10.0.1.4:ssh", "a port is 1..65535"),
    ("slot-1=bad_host!", "no valid host name"),
    ("slot-1=[::g]:22", "no valid IP address"),
])
def test_bad_addresses_are_refused_naming_the_variable(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match="SPOTKIT_SLOT_ADDRESSES") as caught:
        parse_addresses(text)
    assert says in str(caught.value)


def test_jump_host_takes_its_user_or_the_nodes() -> None:
    assert parse_jump_host("ops@20.1.2.3:2022", "azureuser") == Endpoint("20.1.2.3", 2022, "ops")
    assert parse_jump_host("20.1.2.3", "azureuser") == Endpoint("20.1.2.3", 22, "azureuser")
    with pytest.raises(ConfigError, match="SPOTKIT_JUMP_HOST"):
        parse_jump_host("bad user@20.1.2.3", "azureuser")


def test_public_keys_are_checked_and_private_ones_refused(keys: dict[str, Path], tmp_path: Path) -> None:
    line = keys["ed25519"].read_text()
    kind, data, _comment = line.split()
    assert parse_public_key(line, "here") == f"{kind} {data}"  # the comment is not published
    for bad, says in ((f"ssh-dss {data}", "not an OpenSSH public key"), (f"{kind} {data[:-3]}", "not valid base64"),
                      (f"ecdsa-sha2-nistp256 {data}", "does not hold a ecdsa-sha2-nistp256 key")):
        with pytest.raises(ConfigError, match=says):
            parse_public_key(bad, "here")
    private = keys["ed25519"].with_suffix("")
    (tmp_path / "stolen_key.pub").write_bytes(private.read_bytes())  # a private key under a .pub name
    with pytest.raises(ConfigError, match="not a public key file; refusing to publish it"):
        read_host_key_files(str(tmp_path / "*.pub"))
    with pytest.raises(ConfigError, match=r"only public host keys \(\*.pub\)"):
        read_host_key_files(str(private.parent / "ssh_host_ed25519_key*"))


def test_published_record_builds_known_hosts_by_address(keys: dict[str, Path], tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    record = publish_host_keys(store, "slot-1", str(next(iter(keys.values())).parent / "*.pub"), clock=lambda: 42.0)
    assert load(NodeHostKeys, store.get(host_keys_key("slot-1"))) == record == read_host_keys(store)["slot-1"]
    assert [key.split()[0] for key in record.keys] == ["ecdsa-sha2-nistp256", "ssh-ed25519"]  # file name order
    lines = known_hosts_lines({"slot-1": Endpoint("127.0.0.1", 2201), "slot-2": Endpoint("10.0.1.5")},
                              {"slot-1": record, "slot-3": record})
    assert lines == [f"[127.0.0.1]:2201 {key}" for key in record.keys]  # slot-2: no record; slot-3: no address
    ssh_keygen_says = fingerprint(keys["ed25519"].read_text())
    assert ssh_keygen_says.startswith("SHA256:") and len(ssh_keygen_says) == 50
    with pytest.raises(ConfigError, match="no host key matches"):
        publish_host_keys(store, "slot-1", str(tmp_path / "none-*.pub"))


def test_a_record_key_that_does_not_parse_is_left_out() -> None:
    record = NodeHostKeys(node="slot-1", keys=["ssh-ed25519 !!!"], published_at=1.0)
    assert known_hosts_lines({"slot-1": Endpoint("10.0.1.4")}, {"slot-1": record}) == []


def test_settings_from_the_environment_and_their_errors(tmp_path: Path) -> None:
    env = {"SPOTKIT_SLOT_ADDRESSES": "slot-1=10.0.1.4", "SPOTKIT_JUMP_HOST": "20.1.2.3",
           "SPOTKIT_SSH_USER": "ops", "SPOTKIT_SSH_KEY": str(tmp_path / "id"),
           "SPOTKIT_SSH_CONNECT_TIMEOUT": "2.5", "SPOTKIT_LOGS_COMMAND": "tail -n {lines} {follow} /var/log/a.log"}
    settings = load_remote_settings(env, connect_timeout=4.0)
    assert settings.jump == Endpoint("20.1.2.3", 22, "ops") and settings.connect_timeout == 4.0
    assert settings.logs(20, True) == "tail -n 20 -f /var/log/a.log"
    assert load_remote_settings({}).logs(5, False) == DEFAULT_LOGS_COMMAND.replace("{lines}", "5").replace(
        " {follow}", "")
    with pytest.raises(ConfigError, match=r"SPOTKIT_SSH_KEY: .*/id is not a file"):
        settings.key()
    for name, value, says in (("SPOTKIT_SSH_COMMAND_TIMEOUT", "0", "above 0"),
                              ("SPOTKIT_SSH_CONNECT_TIMEOUT", "soon", "above 0"),
                              ("SPOTKIT_LOGS_COMMAND", "tail -f /x", "lacks {lines}"),
                              ("SPOTKIT_LOGS_COMMAND", "tail -n {lines} /x", "lacks {follow}")):
        with pytest.raises(ConfigError, match=name) as caught:
            load_remote_settings({name: value})
        assert says in str(caught.value)


def test_exit_rule_is_the_highest_status() -> None:
    def results(*codes: int) -> list[NodeResult]:
        return [NodeResult(f"n{i}", code) for i, code in enumerate(codes)]

    assert overall_exit(results(0, 0, 0)) == 0
    assert overall_exit(results(0, 3, 1)) == 3
    assert overall_exit(results(0, 3, 255)) == 255  # a node not reached outranks any remote status
    assert overall_exit([]) == 0


def test_all_means_every_address_or_heartbeat_and_live_the_fresh_ones() -> None:
    now = 1_000.0
    beats = [Heartbeat("slot-2", "idle", "1", now - 5), Heartbeat("slot-3", "working", "1", now - 500),
             Heartbeat("slot-4", "stopped", "1", now - 1)]
    addresses = {"slot-1": Endpoint("10.0.1.4"), "slot-2": Endpoint("10.0.1.5")}
    assert select_nodes(addresses, beats, now, 30, live=False) == ["slot-1", "slot-2", "slot-3", "slot-4"]
    assert select_nodes(addresses, beats, now, 30, live=True) == ["slot-2"]


def test_ssh_command_line_checks_keys_strictly_through_the_jump_host(tmp_path: Path) -> None:
    target = Target("slot-1", Endpoint("10.0.1.4"), "azureuser", tmp_path / "id", tmp_path / "kh")
    jump = Jump(Endpoint("20.1.2.3", 2022, "ops"), tmp_path / "id", tmp_path / "jump 100%")
    argv = ssh_argv(target, jump, connect_timeout=7, ssh="/usr/bin/ssh", command=["uptime"])
    assert argv[0] == "/usr/bin/ssh" and argv[-3:] == ["azureuser@10.0.1.4", "--", "uptime"]
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    assert {"StrictHostKeyChecking=yes", f"UserKnownHostsFile={tmp_path / 'kh'}", "GlobalKnownHostsFile=/dev/null",
            "PasswordAuthentication=no", "IdentitiesOnly=yes", "ConnectTimeout=7"} <= set(options)
    assert argv[argv.index("-i") + 1] == str(tmp_path / "id") and argv[argv.index("-F") + 1] == "none"
    [proxy] = [o for o in options if o.startswith("ProxyCommand=")]
    # The jump host's own checks, its port and user; a literal % doubled for ssh's %-expansion.
    assert " -W %h:%p ops@20.1.2.3" in proxy and "-p 2022" in proxy and "StrictHostKeyChecking=yes" in proxy
    assert f"'UserKnownHostsFile=\"{tmp_path}/jump 100%%%%\"'" in proxy
    assert not [o for o in options if o.startswith("ProxyCommand")][1:]
    direct = ssh_argv(target, None, connect_timeout=0.2)
    assert not [word for word in direct if word.startswith("ProxyCommand")] and "ConnectTimeout=1" in direct


def test_fleet_refuses_a_node_without_an_address_or_a_published_key(keys: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "id").write_text("a key")
    settings = load_remote_settings({"SPOTKIT_SLOT_ADDRESSES": "slot-1=10.0.1.4,slot-2=10.0.1.5",
                                     "SPOTKIT_SSH_KEY": str(tmp_path / "id")})
    record = NodeHostKeys("slot-1", [parse_public_key(keys["ed25519"].read_text(), "test")], 1.0)
    fleet = RemoteFleet(settings, {"slot-1": record}, tmp_path / "ssh" / "known_hosts")
    assert (tmp_path / "ssh" / "known_hosts").read_text() == f"10.0.1.4 {record.keys[0]}\n"
    assert fleet.target("slot-1").endpoint == Endpoint("10.0.1.4")
    with pytest.raises(RemoteError, match=r"slot-2: no published host key \(hostkeys/slot-2.json\)"):
        fleet.target("slot-2")
    with pytest.raises(RemoteError, match="slot-9: no address; add slot-9=HOST to SPOTKIT_SLOT_ADDRESSES"):
        fleet.target("slot-9")


def test_prefixed_lines_keep_each_nodes_lines_whole() -> None:
    sink: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            sink.append(text)

        def flush(self) -> None:
            pass

    lock = threading.Lock()
    a, b = PrefixedLines("a", Sink(), lock), PrefixedLines("b", Sink(), lock)
    a.write("one\ntw")
    b.write("x\n")
    a.write("o\nthree")
    a.close()
    assert sink == ["a | one\n", "b | x\n", "a | two\n", "a | three\n"]
