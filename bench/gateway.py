"""bench/gateway: requests/s and p50/p99 latency of ``spotkit serve`` through the official ``openai`` SDK.

    python -m bench.gateway [--hits 200] [--fresh 30] [--concurrency 4] [--clip-seconds 4]

Two workloads against one gateway (uvicorn, the real app) on the embedded backends, with one agent
process running the simulated engine (200 audio s per s), so the numbers are the gateway's and the
queue's, not a model's:

* **cache hits** — the same clip again and again: upload, hash, index lookup, render;
* **fresh short clips** — a different clip each request (the same speech, one sample changed, so
  the bytes and the job differ): upload, decode, VAD, segment upload, enqueue, the agent's round trip
  through the queue and the store, and the gateway's polling.

Prints a table and one JSON line. Latency is measured at the client, per request.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import statistics
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import uvicorn

from runtime.config import load_settings
from runtime.gateway.apikeys import create_key
from runtime.gateway.app import create_app
from runtime.local_agents import start_agent, stop_agent
from runtime.media import SAMPLE_RATE, decode_file
from runtime.samples import demo_sample
from runtime.segmenter import find_speech
from runtime.store import open_store

WORK = Path(__file__).resolve().parent / ".work" / "gateway"


def clip(seconds: float) -> Callable[[int], bytes]:
    """WAV bytes of the demo's first speech, *seconds* long; the n-th differs in one sample."""
    pcm = decode_file(demo_sample())
    start = find_speech(pcm, 30.0)[0][0]
    base = pcm.samples[start:start + int(seconds * SAMPLE_RATE)].copy()

    def nth(n: int) -> bytes:
        samples = base.copy()
        samples[0] = n % 30000
        buf = io.BytesIO()
        with wave.open(buf, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(samples.tobytes())
        return buf.getvalue()

    return nth


def measure(client: openai.OpenAI, media: Callable[[int], bytes], count: int, concurrency: int,
            offset: int) -> tuple[float, list[float]]:
    """(requests/s, latencies): *count* transcriptions, *concurrency* at a time."""
    def one(n: int) -> float:
        started = time.perf_counter()
        client.audio.transcriptions.create(model="whisper-1", file=(f"clip-{n}.wav", media(offset + n)),
                                           response_format="json")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started), latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=200)
    parser.add_argument("--fresh", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    args = parser.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    settings = load_settings(env={}, home=WORK / "home", transcriber="simulated", simulated_speed=200.0,
                             idle_seconds=0.5, heartbeat_seconds=1.0)
    store = open_store(settings.store)
    store.ensure()
    _, key = create_key(store, "bench", rate_per_minute=1_000_000)
    app = create_app(settings, spool_dir=WORK / "spool")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    agent = start_agent(settings, "bench-1")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1", api_key=key, max_retries=0,
                           timeout=120)
    media = clip(args.clip_seconds)
    try:
        measure(client, media, 1, 1, 0)  # the agent's start and the first job: not measured
        rows = {"fresh short clips": measure(client, media, args.fresh, args.concurrency, 1),
                "cache hits": measure(client, lambda n: media(0), args.hits, args.concurrency, 0)}
    finally:
        stop_agent(agent)
        server.should_exit = True
        thread.join(timeout=10)
    print(f"{'workload':<20} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    summary = {}
    for name, (rate, latencies) in rows.items():
        p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
        print(f"{name:<20} {len(latencies):>8} {rate:>8.1f} {p50:>8.1f} {p99:>8.1f}")
        summary[name.replace(" ", "_")] = {"requests": len(latencies), "requests_per_second": round(rate, 2),
                                          "p50_ms": round(p50, 1), "p99_ms": round(p99, 1)}
    print(json.dumps({"bench": "gateway", "concurrency": args.concurrency, "clip_seconds": args.clip_seconds,
                      **summary}))


if __name__ == "__main__":
    main()
