"""The fleet as SSH sees it: which nodes, at which address, with which host keys; commands on one or
on all of them in parallel, and the exit status they add up to.

Exit rule (``spotkit node exec|logs|restart``): one node gives its command's own status, or 255 when
there is none (not reached, host key refused, key refused, timed out: ssh's convention). Several
nodes give 0 when every one gave 0, else the highest status among them, so 255 says at least one
node was not reached and anything else is the worst a command returned; each node's own status is
reported beside its name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError, RemoteError
from runtime.records import Heartbeat, NodeHostKeys, host_keys_key, read_heartbeats, read_host_keys
from runtime.remote.addresses import Endpoint
from runtime.remote.hostkeys import known_hosts_lines, write_known_hosts
from runtime.remote.runner import NO_STATUS, Jump, Runner, Stream, Target
from runtime.remote.settings import ENV, RemoteSettings
from runtime.remote.ssh_argv import ssh_argv
from runtime.store.base import ObjectStore

MAX_PARALLEL = 16


@dataclass(frozen=True)
class NodeResult:
    """What one node gave: its exit status, its output, and (status 255) why there was none."""

    node: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    kind: str = ""  # the `RemoteError` kind when *error* is set
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overall_exit(results: Iterable[NodeResult]) -> int:
    """0 when every node gave 0, else the highest status (255: some node was not reached)."""
    return max((r.exit_code for r in results), default=0)


def select_nodes(addresses: Mapping[str, Endpoint], heartbeats: Iterable[Heartbeat], now: float,
                 max_age: float, live: bool) -> list[str]:
    """The nodes ``--all`` means: every node with a configured address or a heartbeat, sorted; with
    *live*, only those whose heartbeat is fresh (a deallocated slot's address is still configured)."""
    beats = {beat.node: beat for beat in heartbeats}
    if live:
        return sorted(node for node, beat in beats.items() if beat.is_fresh(now, max_age))
    return sorted(set(addresses) | set(beats))


class RemoteFleet:
    """Targets for the nodes, from the settings' addresses and the store's host-key records; writes the
    known_hosts that fabric and the system ssh both read (*known_hosts*, replaced on every load)."""

    def __init__(self, settings: RemoteSettings, records: Mapping[str, NodeHostKeys], known_hosts: Path) -> None:
        self.settings, self.records, self.known_hosts = settings, dict(records), known_hosts
        write_known_hosts(known_hosts, known_hosts_lines(settings.addresses, self.records))

    @classmethod
    def load(cls, store: ObjectStore, settings: RemoteSettings, state_dir: Path) -> RemoteFleet:
        return cls(settings, read_host_keys(store), state_dir / "ssh" / "known_hosts")

    def target(self, node: str) -> Target:
        endpoint = self.settings.addresses.get(node)
        if endpoint is None:
            known = ", ".join(sorted(self.settings.addresses)) or "none"
            raise RemoteError(f"{node}: no address; add {node}=HOST to {ENV['addresses']} "
                              f"(`pulumi stack output slot_addresses`; configured: {known})", kind="config")
        record = self.records.get(node)
        if record is None or not record.keys:
            raise RemoteError(f"{node}: no published host key ({host_keys_key(node)}); the node publishes it "
                              "when its agent starts (`spotkit node publish-host-keys`); not connecting without it",
                              kind="host-key")
        return Target(node=node, endpoint=endpoint, user=self.settings.user, key_file=self.settings.key(),
                      known_hosts=self.known_hosts)

    def jump(self) -> Jump | None:
        if self.settings.jump is None:
            return None
        return Jump(endpoint=self.settings.jump, key_file=self.settings.key(),
                    known_hosts=self.settings.jump_known_hosts)

    def ssh_argv(self, node: str, command: Sequence[str] = (), ssh: str = "ssh") -> list[str]:
        return ssh_argv(self.target(node), self.jump(), self.settings.connect_timeout, ssh=ssh, command=command)

    def nodes(self, store: ObjectStore, now: float, max_age: float, live: bool) -> list[str]:
        nodes = select_nodes(self.settings.addresses, read_heartbeats(store), now, max_age, live)
        if not nodes:
            raise ConfigError("no nodes: none has a fresh heartbeat" if live else
                              f"no nodes: none has sent a heartbeat or has an address in {ENV['addresses']}")
        return nodes


def run_one(runner: Runner, fleet: RemoteFleet, node: str, command: str, timeout: float | None,
            out: Stream | None = None, err: Stream | None = None,
            clock: Callable[[], float] = time.monotonic) -> NodeResult:
    """*command* on *node*; a failure to run it becomes a result with status 255 and its one line."""
    started = clock()
    try:
        output = runner.run(fleet.target(node), command, timeout=timeout, out=out, err=err)
    except RemoteError as error:
        return NodeResult(node, NO_STATUS, error=str(error), kind=error.kind, seconds=clock() - started)
    except ConfigError as error:  # the key file, checked before connecting
        return NodeResult(node, NO_STATUS, error=str(error), kind="config", seconds=clock() - started)
    return NodeResult(node, output.exit_code, output.stdout, output.stderr, seconds=clock() - started)


def run_many(runner: Runner, fleet: RemoteFleet, nodes: Sequence[str], command: str, timeout: float | None,
             out: Stream | None = None, err: Stream | None = None,
             on_result: Callable[[NodeResult], None] | None = None) -> list[NodeResult]:
    """*command* on every node at once (a thread each, up to `MAX_PARALLEL`), results in *nodes*' order.
    With *out*/*err*, each node's lines are written as they come, prefixed ``node | ``."""
    lock = threading.Lock()

    def one(node: str) -> NodeResult:
        node_out = PrefixedLines(node, out, lock) if out is not None else None
        node_err = PrefixedLines(node, err, lock) if err is not None else None
        result = run_one(runner, fleet, node, command, timeout, node_out, node_err)
        for stream in (node_out, node_err):
            if stream is not None:
                stream.close()
        if on_result is not None:
            with lock:
                on_result(result)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(nodes))), thread_name_prefix="ssh")
    try:
        return list(pool.map(one, nodes))
    except BaseException:  # Ctrl-C: end the connections, or the threads (a --follow) would never return
        runner.close()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class PrefixedLines:
    """A `Stream` that writes whole lines, each as ``node | line``, under a lock shared by all nodes, so
    lines of parallel nodes never interleave mid-line."""

    def __init__(self, node: str, sink: Stream, lock: threading.Lock) -> None:
        self.node, self.sink, self.lock = node, sink, lock
        self._partial = ""

    def write(self, text: str, /) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            with self.lock:
                for line in lines:
                    self.sink.write(f"{self.node} | {line}\n")
                self.sink.flush()
        return len(text)

    def flush(self) -> None:
        pass  # whole lines only: a partial line waits for its end (or for close)

    def close(self) -> None:
        if self._partial:
            self.write("\n")
