"""The fleet-wide eviction alerts, which no single node can send: a storm (many spot evictions in one
window: one page for all of them) and, with ``eviction_alerts = digest``, a daily digest instead of a
page per eviction. The decision is `runtime.eviction.decision.storm`; this runs it each controller
round and sends each alert once (a write-if-absent marker per window or day)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass

from runtime.errors import SpotkitError
from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import StormPolicy, storm, storm_period
from runtime.records import EvictionRecord, alert_marker_key, day_of, read_evictions
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.controller")
DAY = 86400.0


@dataclass
class EvictionAlerts:
    store: ObjectStore
    alerter: Alerter
    policy: StormPolicy
    digest: bool = False  # eviction_alerts = digest: one message a day for yesterday's evictions

    def check(self, now: float) -> list[str]:
        """Send what is due; returns the alerts sent this round (for the audit record)."""
        sent: list[str] = []
        try:
            today, yesterday = day_of(now), day_of(now - DAY)
            recent = read_evictions(self.store, yesterday) + read_evictions(self.store, today)
            storming = storm(recent, now, self.policy)
            if storming and self._once("eviction-storm", str(storm_period(now, self.policy))):
                nodes = Counter(e.node for e in storming)
                self.alerter.notify("eviction-storm", (
                    f":rotating_light: spotkit eviction storm: {len(storming)} spot evictions in the last "
                    f"{self.policy.window_seconds / 60:.0f} min on {len(nodes)} nodes "
                    f"({', '.join(f'{n} ×{c}' for n, c in sorted(nodes.items()))}); "
                    f"{sum(e.requeued for e in storming)} segments requeued"),
                    {"evictions": [asdict(e) for e in storming]})
                sent.append("eviction-storm")
            if self.digest and self._once("eviction-digest", yesterday):
                sent += self._send_digest(yesterday, [e for e in recent if day_of(e.seen_at) == yesterday])
        except SpotkitError as err:  # alerts must never stop a scaling round
            log.warning("event=eviction-alerts-failed error=%r", str(err))
        return sent

    def _send_digest(self, day: str, evictions: list[EvictionRecord]) -> list[str]:
        spot = [e for e in evictions if e.origin == "imds"]
        if not spot:
            return []
        nodes = Counter(e.node for e in spot)
        self.alerter.notify("eviction-digest", (
            f"spotkit evictions on {day}: {len(spot)} spot evictions on {len(nodes)} nodes, "
            f"{sum(e.requeued for e in spot)} segments requeued, "
            f"{sum(e.wasted_gpu_seconds for e in spot):.0f} GPU s wasted, "
            f"{sum(1 for e in spot if e.acknowledged_at is None)} not acknowledged"),
            {"day": day, "evictions": [asdict(e) for e in spot]})
        return ["eviction-digest"]

    def _once(self, kind: str, period: str) -> bool:
        return self.store.put_if_absent(alert_marker_key(kind, period), b"{}")
