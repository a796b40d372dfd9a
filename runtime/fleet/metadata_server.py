"""HTTP front of `MetadataState`: Azure's IMDS paths per VM, plus an admin API for the local fleet.

    GET  /vm/{vm}/metadata/scheduledevents?api-version=2020-07-01   (header Metadata: true)
    POST /vm/{vm}/metadata/scheduledevents   {"StartRequests": [{"EventId": "…"}]}
    GET  /vm/{vm}/metadata/instance/compute?api-version=2021-02-01
    (the same without the /vm/{vm} prefix answer for ``default_vm``)

    POST   /admin/events            {"type", "resources", "notice_seconds", …} → {"event_id"}
    DELETE /admin/events/{id}       cancel (the event disappears)
    POST   /admin/events/{id}/complete
    POST   /admin/vm/{vm}/faults    {"mode": "status"|"garbage"|"delay"|"raw", "count", …}
    GET    /admin/state
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.fleet.metadata_state import Fault, MetadataState

ExtraRoute = Callable[[str, str, dict[str, Any]], tuple[int, Any] | None]


class MetadataServer:
    def __init__(self, state: MetadataState | None = None, host: str = "127.0.0.1", port: int = 0,
                 default_vm: str = "local-vm", extra: ExtraRoute | None = None) -> None:
        self.state = state or MetadataState()
        self.default_vm = default_vm
        self.extra = extra
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def vm_endpoint(self, vm: str) -> str:
        """What a node's SPOTKIT_IMDS_ENDPOINT should be to see *vm*'s document."""
        return f"{self.url}/vm/{vm}"

    def start(self) -> MetadataServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="imds")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_ref: MetadataServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests poll every 50 ms
        return

    def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length))
        return data if isinstance(data, dict) else {}

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            body = self._body() if method == "POST" else {}
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        if parts[:1] == ["admin"]:
            self._admin(method, parts[1:], body)
            return
        vm = self.server_ref.default_vm
        if parts[:1] == ["vm"] and len(parts) > 1:
            vm, parts = parts[1], parts[2:]
        self._metadata(method, vm, parts, parse_qs(url.query), body)

    def _metadata(self, method: str, vm: str, parts: list[str], query: dict[str, list[str]],
                  body: dict[str, Any]) -> None:
        state = self.server_ref.state
        if self.headers.get("Metadata") != "true":
            self._send(400, {"error": "Bad request. Required metadata header not specified"})
            return
        if "api-version" not in query:
            self._send(400, {"error": "Bad request. api-version was not specified"})
            return
        if parts == ["metadata", "instance", "compute"] and method == "GET" and not state.mock_server_quirks:
            self._send(200, {"name": vm, "vmSize": "Standard_NC4as_T4_v3", "location": "local",
                             "priority": "Spot", "vmId": f"local-{vm}"})
            return
        if parts != ["metadata", "scheduledevents"]:
            self._send(404, {"error": "not found"})
            return
        fault = state.take_fault(vm)
        if fault is not None:
            if fault.mode == "delay":
                time.sleep(fault.seconds)
            elif fault.mode == "status":
                self._send(fault.status, {"error": "injected fault"})
                return
            elif fault.mode == "garbage":
                self._send(200, None, raw=b'{"DocumentIncarnation": 3, "Events": [{"EventId": ')
                return
            elif fault.mode == "raw":
                self._send(200, None, raw=fault.body.encode())
                return
        if method == "POST":
            requests = body.get("StartRequests")
            if not isinstance(requests, list):
                self._send(400, {"error": "expected StartRequests"})
                return
            ids = [str(r.get("EventId")) for r in requests if isinstance(r, dict)]
            state.acknowledge(vm, ids)
            self._send(200, {})
            return
        self._send(200, state.document(vm))

    def _admin(self, method: str, parts: list[str], body: dict[str, Any]) -> None:
        state = self.server_ref.state
        if parts == ["events"] and method == "POST":
            event = state.add_event(
                str(body.get("type", "Preempt")), list(body.get("resources", [])),
                float(body.get("notice_seconds", 30)), body.get("visible_to"),
                bool(body.get("started", False)), str(body.get("description", "")),
                bool(body.get("iso_not_before", False)), int(body.get("duration_seconds", -1)))
            self._send(201, {"event_id": event.event_id, "not_before": event.not_before})
            return
        if len(parts) == 2 and parts[0] == "events" and method == "DELETE":
            self._send(200 if state.end_event(parts[1], "cancelled") else 404, {})
            return
        if len(parts) == 3 and parts[0] == "events" and parts[2] == "complete" and method == "POST":
            self._send(200 if state.end_event(parts[1], "completed") else 404, {})
            return
        if len(parts) == 3 and parts[0] == "vm" and parts[2] == "faults" and method == "POST":
            state.add_fault(parts[1], Fault(str(body.get("mode", "status")), int(body.get("count", 1)),
                                            int(body.get("status", 500)), float(body.get("seconds", 0)),
                                            str(body.get("body", ""))))
            self._send(201, {})
            return
        if parts == ["state"] and method == "GET":
            self._send(200, state.snapshot())
            return
        extra = self.server_ref.extra
        answer = extra(method, "/".join(parts), body) if extra else None
        if answer is None:
            self._send(404, {"error": f"no admin route {method} /admin/{'/'.join(parts)}"})
        else:
            self._send(*answer)
