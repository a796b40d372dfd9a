"""A stand-in for ``vllm serve``: the same HTTP surface, no GPU, no model.

Run as ``python -m tests.support.vllm_standin --port P [options]``. It accepts the flags the supervisor
passes to ``vllm serve`` (so tests exercise the real command line) and refuses unknown ones, as vLLM
would. Behaviour switches for the supervisor's failure paths:

``--startup-delay S``   /health answers 503 for S seconds ("loading"), then 200.
``--never-healthy``     /health never answers 200.
``--fail-after N``      print an error and exit with code 3 after N seconds, before becoming healthy.
``--crash-after S``     exit with code 1, S seconds after becoming healthy.
``--crash-marker PATH`` crash only if PATH does not exist yet (and create it), so a restart stays up.
``--ignore-sigterm``    ignore SIGTERM, so a supervisor has to escalate to SIGKILL.

Metrics use the names current vLLM exports (``vllm:kv_cache_usage_perc``, not the removed
``vllm:gpu_cache_usage_perc``), produced by prometheus_client as vLLM's are.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class StandIn:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.model = args.served_model_name or args.model or "standin"
        self.started = time.monotonic()
        self.registry = CollectorRegistry()
        labels = {"model_name": self.model, "engine": "0"}
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prefill tokens processed.", list(labels),
                                     registry=self.registry).labels(**labels)
        self.generation_tokens = Counter("vllm:generation_tokens", "Generation tokens processed.", list(labels),
                                         registry=self.registry).labels(**labels)
        self.running = Gauge("vllm:num_requests_running", "Requests in model execution batches.", list(labels),
                             registry=self.registry).labels(**labels)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting to be processed.", list(labels),
                             registry=self.registry).labels(**labels)
        self.kv_usage = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                              list(labels), registry=self.registry).labels(**labels)

    def healthy(self) -> bool:
        up = time.monotonic() - self.started
        if self.args.hang_after is not None and up >= self.args.startup_delay + self.args.hang_after:
            return False  # alive, but no longer answering healthily: a hung engine
        return not self.args.never_healthy and up >= self.args.startup_delay

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("model") != self.model:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                   "type": "NotFoundError", "code": 404}}
        messages = body.get("messages") or []
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages)
        last = str(messages[-1].get("content", "")) if messages else ""
        reply = f"echo: {last}"
        completion_words = len(reply.split())
        self.running.inc()
        self.prompt_tokens.inc(prompt_words)
        self.generation_tokens.inc(completion_words)
        self.kv_usage.set(min(1.0, (prompt_words + completion_words) / 1000))
        self.running.dec()
        return 200, {
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                      "total_tokens": prompt_words + completion_words},
        }


def make_handler(app: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the supervisor's log for what matters

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200 if app.healthy() else 503, b"")
            elif self.path == "/v1/models":
                data = {"object": "list", "data": [{"id": app.model, "object": "model", "owned_by": "vllm",
                                                    "max_model_len": app.args.max_model_len}]}
                self._send(200, json.dumps(data).encode())
            elif self.path == "/metrics":
                self._send(200, generate_latest(app.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"detail":"Not Found"}')

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self._send(404, b'{"detail":"Not Found"}')
                return
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._send(400, b'{"error":{"message":"invalid JSON"}}')
                return
            status, reply = app.chat(body)
            self._send(status, json.dumps(reply).encode())

    return Handler


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm_standin")
    parser.add_argument("subcommand", nargs="?", choices=["serve"])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    # The flags VllmSupervisor passes to `vllm serve`; accepted so the real command line runs here.
    parser.add_argument("--served-model-name")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--gpu-memory-utilization", type=float)
    parser.add_argument("--quantization")
    parser.add_argument("--download-dir")
    # Behaviour switches.
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--never-healthy", action="store_true")
    parser.add_argument("--fail-after", type=float)
    parser.add_argument("--crash-after", type=float)
    parser.add_argument("--crash-marker", type=Path)
    parser.add_argument("--hang-after", type=float, help="Report unhealthy after this many seconds up.")
    parser.add_argument("--ignore-sigterm", action="store_true")
    return parser.parse_args(argv)


def _exit_later(seconds: float, code: int, message: str) -> None:
    def fire() -> None:
        print(message, file=sys.stderr, flush=True)
        os._exit(code)
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(f"standin: starting on {args.host}:{args.port} model={args.model} dtype={args.dtype} "
          f"max_model_len={args.max_model_len} hf_hub_offline={os.environ.get('HF_HUB_OFFLINE')}", flush=True)
    if args.dtype not in ("auto", "half", "float16"):
        print(f"ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0 "
              f"(standin emulates 7.5; got --dtype {args.dtype})", file=sys.stderr, flush=True)
        sys.exit(1)
    failure = "RuntimeError: standin simulated startup failure (CUDA out of memory)"
    if args.fail_after is not None and args.fail_after <= 0:
        print(failure, file=sys.stderr, flush=True)
        sys.exit(3)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    app = StandIn(args)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(app))
    server.daemon_threads = True
    if args.fail_after is not None:
        _exit_later(args.fail_after, 3, failure)
    if args.hang_after is not None and args.crash_marker is not None:
        if args.crash_marker.exists():
            args.hang_after = None  # hang once; the restarted server stays healthy
        else:
            args.crash_marker.touch()
    crash = args.crash_after is not None and (args.crash_marker is None or not args.crash_marker.exists())
    if crash:
        if args.crash_marker is not None:
            args.crash_marker.touch()
        _exit_later(args.startup_delay + args.crash_after, 1, "standin: simulated engine crash (EngineDeadError)")
    server.serve_forever()


if __name__ == "__main__":
    main()
