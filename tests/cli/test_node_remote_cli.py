"""`spotkit node exec|logs|restart|ssh` against real OpenSSH servers on loopback: two nodes' sshd and a
jump host's, each with its own generated host key, letting in one generated client key. The nodes'
host keys reach the CLI the way they do on Azure: `spotkit node publish-host-keys` writes them to the
store, and the CLI builds its known_hosts from the store alone."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.config import load_settings
from runtime.records import Heartbeat, dump, heartbeat_key
from runtime.store import open_store
from tests.cli.test_cli import spotkit
from tests.support.sshd import Sshd, closed_port, keygen, silent_server, start_sshd


@dataclass
class Servers:
    folder: Path
    client_key: Path
    node_a: Sshd
    node_b: Sshd  # its sessions have SPOTKIT_TEST_EXIT=3
    jump: Sshd
    jump_known_hosts: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp("sshd")
    client_public = keygen(folder / "client_key")
    started: list[Sshd] = []
    try:
        for name, env, level in (("node-a", {}, "VERBOSE"), ("node-b", {"SPOTKIT_TEST_EXIT": "3"}, "VERBOSE"),
                                 ("jump", {}, "DEBUG1")):  # DEBUG1: the jump host logs each direct-tcpip channel
            started.append(start_sshd(folder / name, name, client_public, env=env, log_level=level))
        jump = started[2]
        # The jump host publishes nothing: the operator's known_hosts names it (as the runbook says).
        known = folder / "jump_known_hosts"
        known.write_text(f"[127.0.0.1]:{jump.port} {' '.join(jump.host_public_key.read_text().split()[:2])}\n")
        yield Servers(folder, folder / "client_key", started[0], started[1], jump, known)
    finally:
        for server in started:
            server.stop()


def user() -> str:
    return getpass.getuser()


def env_for(servers: Servers, addresses: dict[str, int], jump: bool = False, **extra: str) -> dict[str, str]:
    env = {"SPOTKIT_SLOT_ADDRESSES": ",".join(f"{node}=127.0.0.1:{port}" for node, port in addresses.items()),
           "SPOTKIT_SSH_USER": user(), "SPOTKIT_SSH_KEY": str(servers.client_key),
           "SPOTKIT_SSH_CONNECT_TIMEOUT": "5", **extra}
    if jump:
        env.update(SPOTKIT_JUMP_HOST=f"{user()}@127.0.0.1:{servers.jump.port}",
                   SPOTKIT_JUMP_KNOWN_HOSTS=str(servers.jump_known_hosts))
    return env


def publish(home: Path, node: str, server: Sshd) -> None:
    done = spotkit(home, "node", "publish-host-keys", "--node", node, "--keys", str(server.folder / "*.pub"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{node}: published 1 host keys (ssh-ed25519 SHA256:")


@pytest.fixture
def home(tmp_path: Path, servers: Servers) -> Path:
    """A spotkit home whose store holds node-a's and node-b's published host keys."""
    home = tmp_path / "home"
    publish(home, "node-a", servers.node_a)
    publish(home, "node-b", servers.node_b)
    return home


def test_exec_returns_the_remote_output_and_exit_status(servers: Servers, home: Path) -> None:
    env = env_for(servers, {"node-a": servers.node_a.port})
    done = spotkit(home, "node", "exec", "node-a", "--", "sh", "-c", "echo out; echo oops >&2; exit 7", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (7, "out\n", "oops\n")
    quoted = spotkit(home, "node", "exec", "--json", "node-a", "--", "printf", "%s|", "two words", "it's", env=env)
    assert json.loads(quoted.stdout) | {"seconds": 0} == {
        "node": "node-a", "exit_code": 0, "stdout": "two words|it's|", "stderr": "", "error": "", "kind": "",
        "seconds": 0}
    assert quoted.returncode == 0
    timed = spotkit(home, "node", "exec", "--timeout", "1", "node-a", "--", "sleep", "987", env=env)
    assert timed.returncode == 255
    assert timed.stderr == "error: node-a: the command ran past 1 s and was stopped (--timeout to allow more)\n"
    assert gone_from_the_node(["sleep", "987"])  # stopped there too, not left running


def gone_from_the_node(argv: list[str], within: float = 30.0) -> bool:
    """True once no process runs *argv* (the node's processes are this machine's); False after *within*."""
    deadline = time.monotonic() + within
    while running(argv) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(argv)


def running(argv: list[str]) -> list[int]:
    wanted = [word.encode() for word in argv]
    found = []
    for proc in Path("/proc").iterdir():
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if proc.name.isdigit() and words == wanted:
            found.append(int(proc.name))
    return found


def test_exec_goes_through_the_jump_host(servers: Servers, home: Path) -> None:
    env = env_for(servers, {"node-b": servers.node_b.port}, jump=True)
    done = spotkit(home, "node", "exec", "node-b", "--", "sh", "-c", "echo $SSH_CONNECTION", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[2:] == ["127.0.0.1", str(servers.node_b.port)]
    assert f"server_request_direct_tcpip: originator  port 0, target 127.0.0.1 port {servers.node_b.port}" \
        in servers.jump.log_text()


def test_system_ssh_gets_the_same_known_hosts_jump_host_and_key(servers: Servers, home: Path) -> None:
    env = env_for(servers, {"node-a": servers.node_a.port}, jump=True)
    printed = spotkit(home, "node", "ssh", "node-a", "--print", env=env)
    assert printed.returncode == 0, printed.stderr
    argv = shlex.split(printed.stdout)
    assert argv[-1] == f"{user()}@127.0.0.1" and argv[argv.index("-p") + 1] == str(servers.node_a.port)
    assert argv[argv.index("-i") + 1] == str(servers.client_key)
    assert f"UserKnownHostsFile={home.absolute() / 'ssh' / 'known_hosts'}" in argv
    assert "StrictHostKeyChecking=yes" in argv
    [proxy] = [word for word in argv if word.startswith("ProxyCommand=")]
    assert f"-p {servers.jump.port} -W %h:%p {user()}@127.0.0.1" in proxy
    assert f"UserKnownHostsFile={servers.jump_known_hosts}" in proxy
    # That very command line works with the system ssh, through the jump host...
    ran = subprocess.run([*argv, "--", "echo", "via system ssh"], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert (ran.returncode, ran.stdout) == (0, "via system ssh\n"), ran.stderr
    # ... and `spotkit node ssh` execs it (the process becomes ssh: its output, its exit status).
    shell = spotkit(home, "node", "ssh", "node-a", "--", "sh", "-c", "echo in the shell; exit 4", env=env)
    assert (shell.returncode, shell.stdout) == (4, "in the shell\n"), shell.stderr


def test_logs_show_the_last_lines_and_follow_new_ones(servers: Servers, home: Path, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("".join(f"line {n}\n" for n in range(1, 6)))
    # Through `cat`: a plain `tail -f` notices its reader is gone by itself; a pipeline does not.
    env = env_for(servers, {"node-a": servers.node_a.port},
                  SPOTKIT_LOGS_COMMAND=f"tail -n {{lines}} {{follow}} {log} | cat")
    last = spotkit(home, "node", "logs", "node-a", "--lines", "2", env=env)
    assert (last.returncode, last.stdout) == (0, "line 4\nline 5\n"), last.stderr
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_")} | env
    follow = subprocess.Popen([sys.executable, "-m", "spotkit", "--home", str(home), "node", "logs", "node-a",
                               "--follow", "-n", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=child_env)
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "line 5\n"  # blocks until the remote tail printed it
        with log.open("a") as handle:
            handle.write("written after the follow began\n")
        assert follow.stdout.readline() == "written after the follow began\n"
    finally:
        follow.terminate()
        follow.wait(30)
    # The follow ended with the connection: no `tail -f` is left running on the node (this machine).
    assert gone_from_the_node(["tail", "-n", "1", "-f", str(log)])


def test_ctrl_c_ends_a_follow_on_every_node(servers: Servers, home: Path, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("the only line\n")
    env = env_for(servers, {"node-a": servers.node_a.port, "node-b": servers.node_b.port}, jump=True,
                  SPOTKIT_LOGS_COMMAND=f"tail -n {{lines}} {{follow}} {log} | cat")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_")} | env
    follow = subprocess.Popen([sys.executable, "-m", "spotkit", "--home", str(home), "node", "logs", "--all",
                               "--follow", "-n", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=child_env)
    try:
        assert follow.stdout is not None
        assert sorted(follow.stdout.readline() for _ in range(2)) == ["node-a | the only line\n",
                                                                     "node-b | the only line\n"]
        follow.send_signal(signal.SIGINT)
        assert follow.wait(60) != 0  # ended by the interrupt, not hanging on its threads
    finally:
        follow.kill()
        follow.wait(30)
    assert gone_from_the_node(["tail", "-n", "1", "-f", str(log)])


def test_restart_runs_the_restart_command(servers: Servers, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    env = env_for(servers, {"node-a": servers.node_a.port}, SPOTKIT_RESTART_COMMAND=f"touch {marker}")
    done = spotkit(home, "node", "restart", "node-a", env=env)
    assert (done.returncode, done.stdout) == (0, "node-a: restarted\n") and marker.exists()
    failing = spotkit(home, "node", "restart", "node-a", env={**env, "SPOTKIT_RESTART_COMMAND": "exit 1"})
    assert (failing.returncode, failing.stderr) == (1, "node-a: restart failed (exit 1)\n")


def test_a_wrong_host_key_is_refused_in_one_line(servers: Servers, tmp_path: Path) -> None:
    home = tmp_path / "home"
    impostor = keygen(tmp_path / "other" / "ssh_host_ed25519_key")  # what the store says node-a's key is
    done = spotkit(home, "node", "publish-host-keys", "--node", "node-a", "--keys", str(impostor))
    assert done.returncode == 0, done.stderr
    env = env_for(servers, {"node-a": servers.node_a.port, "node-b": servers.node_b.port})
    refused = spotkit(home, "node", "exec", "node-a", "--", "echo", "should not run", env=env)
    assert refused.returncode == 255 and refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: node-a: 127.0.0.1:{servers.node_a.port} showed host key SHA256:")
    assert "; refused." in line and f"not the one in {home.absolute() / 'ssh' / 'known_hosts'}" in line
    # The system ssh, given the same known_hosts, refuses too.
    argv = shlex.split(spotkit(home, "node", "ssh", "node-a", "--print", env=env).stdout)
    ran = subprocess.run([*argv, "--", "true"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert ran.returncode == 255 and "Host key verification failed" in ran.stderr
    # A node that never published a key is not connected to at all.
    unknown = spotkit(home, "node", "exec", "node-b", "--", "true", env=env)
    assert (unknown.returncode, unknown.stderr) == (
        255, "error: node-b: no published host key (hostkeys/node-b.json); the node publishes it when its agent "
             "starts (`spotkit node publish-host-keys`); not connecting without it\n")


def test_an_unreachable_node_is_one_clear_line_within_the_timeout(servers: Servers, home: Path) -> None:
    port = closed_port()
    env = env_for(servers, {"node-a": port}, SPOTKIT_SSH_CONNECT_TIMEOUT="2")
    refused = spotkit(home, "node", "exec", "node-a", "--", "true", env=env)
    assert (refused.returncode, refused.stderr) == (
        255, f"error: node-a: cannot connect to 127.0.0.1:{port} (connection refused)\n")
    through = spotkit(home, "node", "exec", "node-a", "--", "true", env=env_for(servers, {"node-a": port}, jump=True))
    assert (through.returncode, through.stderr) == (
        255, f"error: node-a: the jump host cannot reach 127.0.0.1:{port} (Connect failed); is the VM running?\n")
    silent, silent_port = silent_server()  # takes the TCP connection, never says a word
    try:
        mute = spotkit(home, "node", "exec", "--json", "node-a", "--", "true",
                       env=env_for(servers, {"node-a": silent_port}, SPOTKIT_SSH_CONNECT_TIMEOUT="1"))
    finally:
        silent.close()
    result = json.loads(mute.stdout)
    assert (mute.returncode, result["exit_code"], result["kind"]) == (255, 255, "timeout")
    assert result["error"] == (f"node-a: no SSH answer from 127.0.0.1:{silent_port} within 1 s "
                               "(SPOTKIT_SSH_CONNECT_TIMEOUT)")


BARRIER = ("marker=$(mktemp -p {dir}); i=0; "
           "while [ $(ls {dir} | wc -l) -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; "
           "[ $(ls {dir} | wc -l) -ge 2 ] || exit 9; echo met the other node; exit ${{SPOTKIT_TEST_EXIT:-0}}")


def test_all_runs_every_node_at_once_and_reports_each(servers: Servers, home: Path, tmp_path: Path) -> None:
    """Each node's command waits (up to 30 s, then exits 9) until the other node's has started: they can
    only both meet if they run at the same time. node-c's port is closed; node-d only has a heartbeat."""
    publish(home, "node-c", servers.node_a)  # published once, gone since (a deallocated slot)
    store = open_store(load_settings(env={}, home=home).store)
    store.put(heartbeat_key("node-d"), dump(Heartbeat("node-d", "idle", "1", time.time())))
    gone = closed_port()
    env = env_for(servers, {"node-a": servers.node_a.port, "node-b": servers.node_b.port, "node-c": gone})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    done = spotkit(home, "node", "exec", "--all", "--", "sh", "-c", BARRIER.format(dir=barrier), env=env)
    assert done.returncode == 255  # the highest status: node-c and node-d could not be asked
    assert "node-a | met the other node\n" in done.stdout and "node-b | met the other node\n" in done.stdout
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()
            if line.split() and line.split()[0] in ("node-a", "node-b", "node-c", "node-d") and "|" not in line}
    assert {node: row[0] for node, row in rows.items()} == {"node-a": "0", "node-b": "3", "node-c": "255",
                                                            "node-d": "255"}
    assert sorted(done.stderr.splitlines()) == [
        f"error: node-c: cannot connect to 127.0.0.1:{gone} (connection refused)",
        "error: node-d: no address; add node-d=HOST to SPOTKIT_SLOT_ADDRESSES (`pulumi stack output "
        "slot_addresses`; configured: node-a, node-b, node-c)"]

    for marker in barrier.iterdir():
        marker.unlink()
    store.delete(heartbeat_key("node-d"))
    as_json = spotkit(home, "node", "exec", "--all", "--json", "--", "sh", "-c", BARRIER.format(dir=barrier),
                      env=env_for(servers, {"node-a": servers.node_a.port, "node-b": servers.node_b.port},
                                  jump=True))
    results = {r["node"]: r for r in json.loads(as_json.stdout)}
    assert as_json.returncode == 3  # every node answered: the highest of their statuses
    assert {n: (r["exit_code"], r["stdout"], r["error"]) for n, r in results.items()} == {
        "node-a": (0, "met the other node\n", ""), "node-b": (3, "met the other node\n", "")}

    # --live: only the nodes whose heartbeat is fresh (node-b's is a day old).
    store.put(heartbeat_key("node-a"), dump(Heartbeat("node-a", "working", "1", time.time())))
    store.put(heartbeat_key("node-b"), dump(Heartbeat("node-b", "idle", "1", time.time() - 86_400)))
    live = spotkit(home, "node", "exec", "--all", "--live", "--json", "--", "echo", "alive", env=env)
    assert [(r["node"], r["exit_code"], r["stdout"]) for r in json.loads(live.stdout)] == [("node-a", 0, "alive\n")]


@pytest.mark.parametrize("verb", ["exec", "logs", "restart", "ssh", "publish-host-keys"])
def test_each_verb_has_examples(tmp_path: Path, verb: str) -> None:
    shown = spotkit(tmp_path, "node", verb, "--help")
    assert shown.returncode == 0 and "Examples:" in shown.stdout


def test_bad_settings_and_usage_are_one_line(tmp_path: Path) -> None:
    bad = spotkit(tmp_path, "node", "exec", "slot-1", "--", "true", env={"SPOTKIT_SLOT_ADDRESSES": "slot-1"})
    assert (bad.returncode, bad.stderr.count("\n")) == (255, 1)  # no status from the node: 255, as ssh
    assert bad.stderr.startswith("error: SPOTKIT_SLOT_ADDRESSES: 'slot-1' is not NODE=HOST[:PORT]")
    assert spotkit(tmp_path, "node", "exec", "--", "true").returncode == 2  # neither NODE nor --all
    assert spotkit(tmp_path, "node", "logs", "slot-1", "--all").returncode == 2
    none = spotkit(tmp_path, "node", "exec", "--all", "--", "true")
    assert (none.returncode, none.stderr) == (255, "error: no nodes: none has sent a heartbeat or has an address "
                                                   "in SPOTKIT_SLOT_ADDRESSES\n")
