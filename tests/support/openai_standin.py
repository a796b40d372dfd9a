"""A local OpenAI-compatible server that misbehaves on cue: OpenAI's URL shape with a key, or Azure
OpenAI's URL shape with Microsoft Entra ID bearer tokens. Used by the engine tests and the routing tests."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[A-Za-z0-9._-]+)/(?P<op>audio/transcriptions|"
                        r"chat/completions)$")


class ApiStandIn:
    """Answers transcriptions and chat completions; `script` queues misbehaviour. With `azure`, only
    Azure OpenAI's URL shape (``/openai/deployments/{name}/…?api-version=…``) and a bearer token that
    `tokens` holds and has not expired are accepted; an ``api-key`` header is refused."""

    def __init__(self, azure: bool = False) -> None:
        self.azure = azure
        self.tokens: dict[str, float] = {}  # bearer token -> when the service stops accepting it
        self.script: list[tuple[str, Any]] = []  # ("status", 429) | ("garbage", None) | ("delay", s)
        self.chat_status: int | None = None  # every chat request fails with this status
        self.echo_status: int | None = None  # fail with this status, echoing the request's credentials
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                path = urllib.parse.urlsplit(self.path).path
                if stand_in.azure:
                    refusal = stand_in.azure_refusal(self.path, self.headers.get("Authorization", ""),
                                                     self.headers.get("api-key"))
                    if refusal:
                        self._send(401, json.dumps({"error": {"code": "401", "message": refusal}}).encode())
                        return
                action, value = stand_in.script.pop(0) if stand_in.script else ("ok", 0)
                if action == "delay":
                    time.sleep(value)
                if action == "status":
                    self._send(int(value), b'{"error": {"message": "slow down"}}', {"Retry-After": "0.05"})
                elif action == "garbage":
                    self._send(200, b"<html>gateway error</html>", content_type="text/html")
                elif action == "bad-segments":
                    self._send(200, b'{"text": "x", "language": "en", "duration": 2, "segments": [{"start": "a"}]}')
                elif stand_in.echo_status is not None:  # a careless gateway
                    auth = self.headers.get("Authorization", "")
                    self._send(stand_in.echo_status, json.dumps({"error": {"message": (
                        f"denied for {auth}; key={auth[7:]}; retry with api_key={auth[7:]}")}}).encode())
                elif stand_in.chat_status is not None and path.endswith("/chat/completions"):
                    self._send(stand_in.chat_status, b'{"error": {"message": "model does not exist"}}')
                elif path.endswith("/audio/transcriptions"):
                    self._send(200, json.dumps({"language": "en", "text": "hello world", "duration": 2.0,
                                                "usage": {"type": "duration", "seconds": 2},
                                                "segments": [
                        {"id": 0, "seek": 0, "start": 0.0, "end": 1.2, "text": " hello", "tokens": [1],
                         "temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0},
                        {"id": 1, "seek": 0, "start": 1.2, "end": 2.0, "text": " world", "tokens": [2],
                         "temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0}]
                    }).encode())
                else:
                    request = json.loads(body)
                    text = request["messages"][-1]["content"]
                    self._send(200, json.dumps({
                        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": request["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": f"[ja] {text}"}}],
                        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}).encode())

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def azure_refusal(self, raw_path: str, authorization: str, api_key: str | None) -> str:
        parts = urllib.parse.urlsplit(raw_path)
        if not AZURE_PATH.match(parts.path) or not urllib.parse.parse_qs(parts.query).get("api-version"):
            return f"not an Azure OpenAI path: {parts.path}"
        if api_key is not None:
            return "this resource has key authentication disabled"
        token = authorization.removeprefix("Bearer ")
        if not authorization.startswith("Bearer ") or token not in self.tokens:
            return "no valid bearer token"
        if time.time() > self.tokens[token]:
            return "the bearer token has expired"
        return ""

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"
