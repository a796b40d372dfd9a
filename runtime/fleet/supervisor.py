"""The local fleet as a background process (``spotkit local up``) and the client the CLI uses.

The supervisor writes ``<home>/fleet.json`` (its pid and admin URL) and serves the metadata
service plus ``/admin/fleet/*``; ``spotkit local evict|kill|status|down`` talk to that URL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from runtime.config import Settings, load_settings, settings_env
from runtime.errors import SpotkitError
from runtime.fleet.local_fleet import Fleet
from runtime.http import HttpClient, HttpError

STATE_FILE = "fleet.json"


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def serve(settings: Settings, nodes: int, restart_after: float | None) -> int:
    fleet = Fleet(settings, [f"local-{i + 1}" for i in range(nodes)], restart_after=restart_after).up()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    path = state_path(settings.home)
    temp = path.with_suffix(".tmp")  # written whole, then renamed: readers never see half of it
    temp.write_text(json.dumps({"pid": os.getpid(), "url": fleet.server.url, "nodes": list(fleet.nodes)}))
    temp.replace(path)
    try:
        while not stop.wait(0.2) and not fleet._stop.is_set():
            pass
    finally:
        if not fleet._stop.is_set():
            fleet.down()
        path.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.fleet.supervisor")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--restart-after", type=float, default=None)
    args = parser.parse_args(argv)
    return serve(load_settings(), args.nodes, args.restart_after)


# -- client -------------------------------------------------------------------------------------
def read_state(home: Path) -> dict[str, Any]:
    path = state_path(home)
    if not path.exists():
        raise SpotkitError(f"no local fleet is running in {home}; start one with `spotkit local up`")
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def request(home: Path, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = read_state(home)["url"] + path
    try:
        reply = HttpClient(10.0, proxies=False).request(method, url, json_body=body, accept=lambda status: True)
        answer = reply.json() if reply.body else {}
    except HttpError as err:
        raise SpotkitError(f"local fleet at {url} is not answering ({err}); "
                           "`spotkit local down` cleans up") from None
    if reply.status >= 400:
        detail = answer.get("error", f"HTTP {reply.status}") if isinstance(answer, dict) else f"HTTP {reply.status}"
        raise SpotkitError(f"local fleet: {detail}")
    return answer


def start(settings: Settings, nodes: int, restart_after: float | None,
          timeout: float = 60.0) -> dict[str, Any]:
    path = state_path(settings.home)
    if path.exists():
        pid = read_state(settings.home)["pid"]
        if _alive(pid):
            raise SpotkitError(f"a local fleet is already running (pid {pid}); `spotkit local down` first")
        path.unlink()
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "logs").mkdir(exist_ok=True)
    args = [sys.executable, "-m", "runtime.fleet.supervisor", "--nodes", str(nodes)]
    if restart_after is not None:
        args += ["--restart-after", str(restart_after)]
    with open(settings.home / "logs" / "fleet.log", "ab") as log:
        process = subprocess.Popen(args, env={**os.environ, **settings_env(settings)}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SpotkitError(f"the fleet supervisor exited ({process.returncode}); see "
                               f"{settings.home / 'logs' / 'fleet.log'}")
        if path.exists():
            return read_state(settings.home)
        time.sleep(0.1)
    raise SpotkitError(f"the fleet did not come up within {timeout} s")


def stop(home: Path, timeout: float = 60.0) -> None:
    pid = read_state(home)["pid"]
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    state_path(home).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


if __name__ == "__main__":
    sys.exit(main())
