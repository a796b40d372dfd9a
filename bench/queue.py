"""bench/queue: every queue operation one segment costs, by kind, one message per segment vs packed.

    python -m bench.queue [--segments 200] [--agents 4] [--pack 8] [--backends sqlite,azurite,moto]

Simulated agents (threads, the simulated engine) drain a job of tiny segments on each backend (the
embedded SQLite queue, Azure Storage queues on Azurite, SQS on moto), once with one message per
segment (``pack=1``) and once with ``?pack=K``. Every service call the submitter and the agents
make is counted by kind (send, receive, renew, release, delete, poison; counts and peeks as
``observe``, apart). Timing is production's scaled down ten times, so renewals per segment are
production's: 60 s leases renewed every 5 s, a batch of 8 × 30 s segments taking 12 s → here 6 s,
0.5 s and 8 × 3 s at 20× (1.2 s). Prints a table, the projected fleet one queue / one account /
N shards carries (docs/scale.md explains the model), and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from bench import emulators
from runtime.config import load_settings
from runtime.fleet.load import run_agents, synthetic_job
from runtime.queue import open_queue
from runtime.store.file_store import FileStore
from runtime.work import TaskOptions

WORK = Path(__file__).resolve().parent / ".work" / "queue"
KINDS = ("send", "receive", "renew", "release", "delete", "poison")
# Published targets (docs/scale.md cites them): Azure Storage, one queue: 2,000 messages/s; one
# account: 20,000 requests/s. SQS standard: no published per-queue call limit; 120,000 in flight.
AZURE_QUEUE_OPS_S, AZURE_ACCOUNT_OPS_S = 2_000, 20_000


def url_for(backend: str, name: str, pack: int) -> str:
    query = f"pack={pack}"
    if backend == "sqlite":
        return f"sqlite://{WORK / 'queue.db'}?queue={name}&{query}"
    if backend == "azurite":
        return f"azure-queue://{emulators.AZURITE_ACCOUNT}/{name}?{query}"
    return f"sqs://us-east-1/{name}?{query}"


def measure(backend: str, env: dict[str, str], pack: int, segments: int, agents: int) -> dict[str, object]:
    home = WORK / f"home-{backend}-{pack}"
    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(env={}, home=home, transcriber="simulated", simulated_speed=20.0, batch_size=8,
                             lease_seconds=6, heartbeat_seconds=0.5, idle_seconds=1.0)
    url = url_for(backend, f"bench{uuid.uuid4().hex[:8]}", pack)
    store = FileStore(home / "store")
    store.ensure()
    submitter = open_queue(url, env=env)
    submitter.ensure()
    synthetic_job(submitter, store, segments, TaskOptions(model=settings.model), seconds=3.0)
    queues = [open_queue(url, env=env) for _ in range(agents)]
    run = run_agents(settings, queues, [FileStore(home / "store") for _ in range(agents)])
    if run.codes != [0] * agents:
        raise SystemExit(f"an agent failed on {backend}: {run.codes}; see {home}")
    ops: Counter[str] = submitter.operations() + run.operations
    work = sum(ops[k] for k in KINDS)
    return {"backend": backend, "pack": pack, "segments": segments,
            "per_segment": {k: round(ops[k] / segments, 3) for k in (*KINDS, "observe")},
            "ops_per_segment": round(work / segments, 3), "ops_per_second": round(work / run.wall_seconds, 1),
            "segments_per_second": round(segments / run.wall_seconds, 1), "wall_s": round(run.wall_seconds, 2)}


def backends(names: list[str]) -> Iterator[tuple[str, AbstractContextManager[dict[str, str]]]]:
    for name in names:
        service: AbstractContextManager[dict[str, str]] = (
            emulators.azurite() if name == "azurite" else emulators.moto() if name == "moto" else nullcontext({}))
        yield name, service


def fleet(ops_per_segment: float, node_rate: float, ops_per_second: float) -> int:
    """Nodes a queue carries: its operation budget over what one node spends (segments/s × ops each)."""
    return int(ops_per_second / (ops_per_segment * node_rate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--pack", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,azurite,moto")
    parser.add_argument("--node-segments-per-second", type=float, default=1.0,
                        help="one node's segment rate for the projection (default 1.0: 30-s segments at 30x)")
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, service in backends(args.backends.split(",")):
        with service as env:
            for pack in (1, args.pack):
                rows.append(measure(name, env, pack, args.segments, args.agents))
                print(f"measured {name} pack={pack}", flush=True)
    print(f"\n{'backend':9}{'pack':>5}" + "".join(f"{k:>9}" for k in (*KINDS, "observe")) +
          f"{'ops/seg':>9}{'ops/s':>9}{'seg/s':>8}")
    for row in rows:
        per = row["per_segment"]
        assert isinstance(per, dict)
        print(f"{row['backend']!s:9}{row['pack']!s:>5}" + "".join(f"{per[k]:>9.3f}" for k in (*KINDS, "observe")) +
              f"{row['ops_per_segment']:>9.3f}{row['ops_per_second']:>9.1f}{row['segments_per_second']:>8.1f}")
    rate = args.node_segments_per_second
    print(f"\nprojected Azure fleet at {rate:g} segments/s per node (queue target {AZURE_QUEUE_OPS_S:,} ops/s, "
          f"account {AZURE_ACCOUNT_OPS_S:,} requests/s):")
    projection = []
    for row in rows:
        if row["backend"] != "azurite":
            continue
        per_seg = float(row["ops_per_segment"])  # type: ignore[arg-type]
        one = fleet(per_seg, rate, AZURE_QUEUE_OPS_S)
        shards = min(AZURE_ACCOUNT_OPS_S, AZURE_QUEUE_OPS_S * args.shards)
        sharded, account = fleet(per_seg, rate, shards), fleet(per_seg, rate, AZURE_ACCOUNT_OPS_S)
        projection.append({"pack": row["pack"], "one_queue_nodes": one, "shards": args.shards,
                           "sharded_nodes": sharded, "one_account_nodes": account})
        print(f"  pack={row['pack']}: one queue {one:,} nodes; {args.shards} shards {sharded:,}; "
              f"one account (10 shards) {account:,} (queue operations only; see docs/scale.md)")
    print(json.dumps({"bench": "queue", "rows": rows, "azure_projection": projection,
                      "node_segments_per_second": rate}))


if __name__ == "__main__":
    main()
