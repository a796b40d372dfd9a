"""The node agent, as collaborating parts: the work loop (`loop.Agent`), its lifecycle, leases, the
batch in the engine, settling messages, translation, and the drain steps the eviction watcher runs."""

from runtime.agent.loop import Agent

__all__ = ["Agent"]
