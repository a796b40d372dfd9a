"""A local stand-in for the Azure Resource Manager calls the controller makes: VM instance view,
start, deallocate, and long-running-operation polling — with injectable failures — and the regional
compute usages and VM sizes `spotkit doctor` checks spot quota against (shaped as Azure answers them)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VM_PATH = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/"
                     r"virtualMachines/([^/]+)(/instanceView|/start|/deallocate)$", re.IGNORECASE)
LOCATION_PATH = re.compile(r"^/subscriptions/([^/]+)/providers/Microsoft\.Compute/locations/([^/]+)/(usages|vmSizes)$",
                           re.IGNORECASE)
# What the T4 sizes are (vCPUs), as the vmSizes list names them.
T4_SIZES = {"Standard_NC4as_T4_v3": 4, "Standard_NC8as_T4_v3": 8, "Standard_NC16as_T4_v3": 16,
            "Standard_NC64as_T4_v3": 64}


@dataclass
class Operation:
    vm: str
    final_power: str
    polls_left: int = 1
    error: dict[str, str] | None = None


@dataclass
class ArmState:
    power: dict[str, str]
    sync_failures: dict[str, tuple[int, str]] = field(default_factory=dict)  # vm -> (HTTP status, code)
    async_failures: dict[str, str] = field(default_factory=dict)  # vm -> error code at the end of the LRO
    operations: dict[str, Operation] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Regional quotas: usage name -> (current value, limit); "lowPriorityCores" is the spot vCPU quota.
    usages: dict[str, tuple[int, int]] = field(default_factory=lambda: {"lowPriorityCores": (0, 3),
                                                                        "cores": (4, 10)})
    usages_forbidden: bool = False  # the caller's identity has no subscription-level read (Azure: 403)


class ArmEmulator:
    def __init__(self, vms: dict[str, str]) -> None:
        self.state = ArmState(dict(vms))
        handler = type("Handler", (_Handler,), {"arm": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    arm: ArmEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the SDK closed a kept-alive connection: not an error of the emulated service

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        state = self.arm.state
        if path.startswith("/operations/"):
            with state.lock:
                op = state.operations.get(path.rsplit("/", 1)[1])
                if op is None:
                    self._send(404, {"error": {"code": "NotFound", "message": "no such operation"}})
                    return
                if op.polls_left > 0:
                    op.polls_left -= 1
                    self._send(200, {"status": "InProgress"}, {"Retry-After": "0"})
                    return
                if op.error:
                    state.power[op.vm] = "deallocated"
                    self._send(200, {"status": "Failed", "error": op.error})
                    return
                state.power[op.vm] = op.final_power
            self._send(200, {"status": "Succeeded"})
            return
        located = LOCATION_PATH.match(path)
        if located:
            with state.lock:
                state.calls.append((located.group(3), located.group(2)))
                usages, forbidden = dict(state.usages), state.usages_forbidden
            if forbidden:
                self._send(403, {"error": {"code": "AuthorizationFailed", "message": "The client does not have "
                                           "authorization to perform action "
                                           "'Microsoft.Compute/locations/usages/read'"}})
                return
            if located.group(3).lower() == "usages":
                self._send(200, {"value": [{"currentValue": used, "limit": limit, "unit": "Count",
                                            "name": {"value": name, "localizedValue": name}}
                                           for name, (used, limit) in usages.items()]})
            else:
                self._send(200, {"value": [{"name": name, "numberOfCores": cores, "memoryInMB": cores * 7 * 1024,
                                            "maxDataDiskCount": 8, "osDiskSizeInMB": 1047552,
                                            "resourceDiskSizeInMB": 180 * 1024} for name, cores in T4_SIZES.items()]})
            return
        match = VM_PATH.match(path)
        if not match or match.group(4).lower() != "/instanceview":
            self._send(404, {"error": {"code": "NotFound", "message": path}})
            return
        vm = match.group(3)
        with state.lock:
            state.calls.append(("instanceView", vm))
            power = state.power.get(vm)
        if power is None:
            self._send(404, {"error": {"code": "ResourceNotFound", "message": f"VM {vm} not found"}})
            return
        self._send(200, {"statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"},
                                      {"code": f"PowerState/{power}", "level": "Info"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        match = VM_PATH.match(self.path.split("?", 1)[0])
        if not match or match.group(4).lower() == "/instanceview":
            self._send(404, {"error": {"code": "NotFound", "message": self.path}})
            return
        vm, action = match.group(3), match.group(4).lower().strip("/")
        state = self.arm.state
        with state.lock:
            state.calls.append((action, vm))
            if action == "start" and vm in state.sync_failures:
                status, code = state.sync_failures[vm]
                self._send(status, {"error": {"code": code, "message": f"{code} (emulated)"}})
                return
            op_id = uuid.uuid4().hex
            error = ({"code": state.async_failures[vm], "message": "allocation failed (emulated)"}
                     if action == "start" and vm in state.async_failures else None)
            state.operations[op_id] = Operation(vm, "running" if action == "start" else "deallocated", error=error)
            state.power[vm] = "starting" if action == "start" else "deallocating"
        base = self.arm.url
        self._send(202, None, {"Azure-AsyncOperation": f"{base}/operations/{op_id}", "Retry-After": "0"})
