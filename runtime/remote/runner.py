"""Run one command on one node over SSH: a small interface (`Runner`) and its fabric implementation.

The fabric runner is strict where fabric is lenient by default: no ssh_config files, no agent, no
keys looked for but the one named, and host keys checked against our own known_hosts only. Fabric
would add an unknown key (AutoAddPolicy); here an unknown or different key refuses the connection.
Every wait is bounded: TCP connect, SSH banner, authentication and the jump host's channel each by
the connect timeout, the command by its own. Failures are classified by exception type into a
`RemoteError` kind, never by message text.
"""

from __future__ import annotations

import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, ThreadException

from runtime.errors import RemoteError
from runtime.remote.addresses import Endpoint
from runtime.remote.hostkeys import fingerprint

NO_STATUS = 255  # what ssh exits with when it has no status of the remote command's


class Stream(Protocol):
    """Where a command's output goes as it arrives (a terminal, or one node's prefixed lines)."""

    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


@dataclass(frozen=True)
class Target:
    """One node as SSH reaches it."""

    node: str
    endpoint: Endpoint
    user: str
    key_file: Path
    known_hosts: Path  # built from the store's host-key records (`runtime.remote.hostkeys`)


@dataclass(frozen=True)
class Jump:
    """The jump host every connection to a node goes through (the only SSH way into the network)."""

    endpoint: Endpoint  # with its user
    key_file: Path
    known_hosts: Path  # the operator's: the jump host publishes nothing to the store


@dataclass(frozen=True)
class Output:
    exit_code: int  # the remote command's; NO_STATUS when it was killed by a signal
    stdout: str
    stderr: str


class Runner(Protocol):
    def run(self, target: Target, command: str, *, timeout: float | None, out: Stream | None = None,
            err: Stream | None = None) -> Output:
        """Run *command* (a shell line) on *target*; output is streamed to *out*/*err* when given and
        returned either way. Raises `RemoteError` when there is no remote exit status."""
        ...

    def close(self) -> None: ...


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, name: str, key: paramiko.PKey) -> None:
        super().__init__(name)
        self.name, self.key = name, key


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host without an entry in our known_hosts (fabric's default would add it)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


class _Remote(Remote):  # type: ignore[misc]  # fabric ships no types
    """fabric's remote runner with its timeout made race-free. invoke's timer thread kills the command
    by closing the channel; the main thread, seeing the channel closed, goes on at once. Two races
    followed, both seen in our tests: invoke decides "timed out" by the timer thread having *ended*,
    so a timer still inside kill() read as a normal end (status -1, no error); and a connection closed
    under the timer's kill() made it raise EOFError (a thread traceback on stderr). Here the kill is
    recorded before the channel is closed, and a close that finds the connection gone is done."""

    _killed = False

    def kill(self) -> None:
        self._killed = True
        try:
            super().kill()
        except (EOFError, OSError, paramiko.SSHException):
            pass

    @property
    def timed_out(self) -> bool:
        return self._killed


class FabricRunner:
    """`Runner` over fabric. With a jump host, one gateway connection is opened on first use and shared
    by every node's connection (threads included): a jump host's sshd drops concurrent unauthenticated
    connections beyond MaxStartups (10 by default), so `--all` must not open one per node."""

    def __init__(self, connect_timeout: float, jump: Jump | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.jump = jump
        self._gateway: Connection | None = None
        self._open: set[Connection] = set()  # every node connection in use, for close() to end
        self._lock = threading.Lock()

    def run(self, target: Target, command: str, *, timeout: float | None, out: Stream | None = None,
            err: Stream | None = None) -> Output:
        gateway = self._open_gateway()
        conn = self._connection(target.endpoint, target.user, target.key_file, target.known_hosts, gateway)
        with self._lock:
            self._open.add(conn)
        try:
            started = time.monotonic()
            try:
                conn.open()
            except Exception as error:
                raise _classified(error, target.node, str(target.endpoint), self.connect_timeout,
                                  time.monotonic() - started, target.known_hosts, gateway is not None) from None
            try:
                result = conn.run(ended_with_the_connection(command), warn=True, hide=out is None, out_stream=out,
                                  err_stream=err, in_stream=False, timeout=timeout, encoding="utf-8")
            except CommandTimedOut:
                raise RemoteError(f"{target.node}: the command ran past {timeout:g} s and was stopped "
                                  "(--timeout to allow more)", kind="timeout") from None
            except (ThreadException, paramiko.SSHException, EOFError, OSError) as error:
                raise RemoteError(f"{target.node}: the SSH session broke ({type(error).__name__}: "
                                  f"{_one_line(error)})", kind="protocol") from None
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()
        code = result.exited if isinstance(result.exited, int) and 0 <= result.exited <= 255 else NO_STATUS
        return Output(exit_code=code, stdout=result.stdout, stderr=result.stderr)

    def close(self) -> None:
        """End every connection, those in use by other threads included (Ctrl-C on ``--all``: their
        commands end on the nodes, their threads return)."""
        with self._lock:
            conns, self._open = list(self._open), set()
            gateway, self._gateway = self._gateway, None
        for conn in conns:
            conn.close()
        if gateway is not None:
            gateway.close()

    def _open_gateway(self) -> Connection | None:
        if self.jump is None:
            return None
        with self._lock:
            if self._gateway is None or not self._gateway.is_connected:
                jump = self.jump
                if not jump.known_hosts.is_file():
                    raise RemoteError(f"jump host {jump.endpoint}: no known_hosts file at {jump.known_hosts} "
                                      "(SPOTKIT_JUMP_KNOWN_HOSTS); add the jump host's key as "
                                      "docs/runbooks/node-shell.md shows", kind="host-key")
                gateway = self._connection(jump.endpoint, jump.endpoint.user, jump.key_file, jump.known_hosts, None)
                started = time.monotonic()
                try:
                    gateway.open()
                except Exception as error:
                    gateway.close()
                    raise _classified(error, "jump host", str(jump.endpoint), self.connect_timeout,
                                      time.monotonic() - started, jump.known_hosts, via_jump=False) from None
                self._gateway = gateway
            return self._gateway

    def _connection(self, endpoint: Endpoint, user: str, key_file: Path, known_hosts: Path,
                    gateway: Connection | None) -> Connection:
        wait = self.connect_timeout
        conn = Connection(
            host=endpoint.host, port=endpoint.port, user=user, gateway=gateway,
            # An explicit, empty SSHConfig: no ~/.ssh/config or /etc/ssh/ssh_config changes what we do.
            config=Config(ssh_config=paramiko.SSHConfig(), lazy=True, overrides={"runners": {"remote": _Remote}}),
            connect_kwargs={"key_filename": [str(key_file)], "look_for_keys": False, "allow_agent": False,
                            "timeout": wait, "banner_timeout": wait, "auth_timeout": wait, "channel_timeout": wait})
        conn.client.set_missing_host_key_policy(_RefuseUnknown())
        try:
            conn.client.get_host_keys().load(str(known_hosts))
        except (paramiko.hostkeys.InvalidHostKey, UnicodeDecodeError, OSError) as error:
            raise RemoteError(f"{known_hosts} is not a known_hosts file ({type(error).__name__}); each line is "
                              "'HOST KEYTYPE KEY'", kind="host-key") from None
        return conn


def ended_with_the_connection(command: str) -> str:
    """*command* wrapped so that it ends when the SSH connection does: a timeout here, or Ctrl-C on
    ``logs --follow``, then stops it on the node too.

    Without a terminal, sshd leaves a command running when its client goes (``ssh host cmd`` does the
    same): a timed-out command or a ``journalctl -f`` would stay on the node. The connection's end
    closes the command's stdin, so a watcher reads stdin (kept on fd 3: a background job's own stdin
    is /dev/null, which the command gets too) and at its end signals the session's process group
    (sshd puts each session in its own). The shell exits with the command's status; the watcher ends
    with the connection, right after."""
    script = (f"exec 3<&0; {command} & child=$!; (cat <&3 >/dev/null 2>&1; kill 0) >/dev/null 2>&1 & "
              "wait $child")
    return "sh -c " + shlex.quote(script)


def _classified(error: Exception, who: str, where: str, wait: float, elapsed: float, known: Path,
                via_jump: bool) -> RemoteError:
    """One line for a failed connection, by the failure's type (and its cause's, for paramiko's wraps).
    Paramiko ends a negotiation that runs out of time with a bare SSHException ("No existing session"),
    so an SSHException after the whole wait is a timeout too."""
    if isinstance(error, paramiko.BadHostKeyException):
        again = ("a re-created node republishes its key when its agent starts" if who != "jump host"
                 else "if the jump host was re-created, fetch its key again (docs/runbooks/node-shell.md)")
        return RemoteError(
            f"{who}: {where} showed host key {fingerprint(_key_line(error.key))}, not the one in {known} "
            f"({fingerprint(_key_line(error.expected_key))}); refused. {again[0].upper()}{again[1:]}; "
            "otherwise treat it as an attack", kind="host-key")
    if isinstance(error, _UnknownHostKey):
        hint = ("publish it from the node (`spotkit node publish-host-keys`)" if who != "jump host"
                else "add it as docs/runbooks/node-shell.md shows")
        return RemoteError(f"{who}: {where} showed host key {fingerprint(_key_line(error.key))}, which {known} "
                           f"does not list; refused ({hint})", kind="host-key")
    if isinstance(error, paramiko.AuthenticationException):
        return RemoteError(f"{who}: {where} refused the key ({type(error).__name__}); is SPOTKIT_SSH_KEY the "
                           "key of the stack's adminSshPublicKey, and SPOTKIT_SSH_USER its user?", kind="auth")
    if isinstance(error, paramiko.ChannelException):
        return RemoteError(f"{who}: the jump host cannot reach {where} ({error.text or 'connect failed'}); "
                           "is the VM running?", kind="unreachable")
    if _timed_out(error) or (isinstance(error, paramiko.SSHException) and elapsed >= wait):
        return RemoteError(f"{who}: no SSH answer from {where} within {wait:g} s"
                           f"{' through the jump host' if via_jump else ''} (SPOTKIT_SSH_CONNECT_TIMEOUT)",
                           kind="timeout")
    if isinstance(error, (paramiko.ssh_exception.NoValidConnectionsError, OSError)):
        return RemoteError(f"{who}: cannot connect to {where} ({_reason(error)})", kind="unreachable")
    if isinstance(error, (paramiko.SSHException, EOFError)):
        return RemoteError(f"{who}: the SSH handshake with {where} failed ({_one_line(error)})", kind="protocol")
    return RemoteError(f"{who}: {where}: {type(error).__name__}: {_one_line(error)}", kind="protocol")


def _timed_out(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(5):  # paramiko wraps a socket timeout in SSHException (the banner wait)
        if seen is None:
            return False
        if isinstance(seen, (TimeoutError, socket.timeout)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(error: Exception) -> str:
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {getattr(e, "strerror", None) or type(e).__name__ for e in error.errors.values()}
        return ", ".join(sorted(r.lower() for r in reasons))
    return (error.strerror if isinstance(error, OSError) and error.strerror else _one_line(error)).lower()


def _key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
