"""Eviction handling: event sources (Azure Scheduled Events, SIGTERM, operator drain requests), a
de-duplicating event store, a pure decision function, and the watcher that drains the agent."""
