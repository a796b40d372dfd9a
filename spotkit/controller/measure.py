"""Read what the controller decides on: the fleet's records over a rolling window and the prices.

`policies.inputs` turns them into sourced inputs (measured / price-book / flag / prior); this module
does the reading. Paid node time is not in the usage records (an idle node writes nothing): it is
integrated from the slots' power history (`policies.power`), or the audit log before there was one.
Live VM prices are fetched at most once an hour; the dated snapshot answers when the API cannot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from policies.inputs import Enough, FleetInputs, Sourced, resolve_inputs, size_spot_price
from policies.power import paid_time
from policies.prices import PriceSourceError, VmPrices, load_price_book, load_vm_prices
from runtime.records import (
    UsageTotal,
    day_of,
    read_audit,
    read_boots,
    read_evictions,
    read_power_span,
    read_usage_totals,
)
from runtime.store.base import ObjectStore

DAY = 86400.0


def month_usage(store: ObjectStore, now: float) -> tuple[str, list[UsageTotal]]:
    """This UTC month (``YYYY-MM``) and its usage summed, day by day: compacted days from their
    rollups, the rest (today's, at least) from the raw records."""
    today = datetime.fromtimestamp(now, tz=UTC).date()
    days = [today.replace(day=d).isoformat() for d in range(1, today.day + 1)]
    return today.isoformat()[:7], [t for day in days for t in read_usage_totals(store, day)]


@dataclass
class InputReader:
    store: ObjectStore
    vm_size: str
    region: str
    api_model: str = "whisper-1"
    live_prices: bool = True
    window_days: int = 7
    flags: Mapping[str, float | None] = field(default_factory=dict)
    enough: Enough = field(default_factory=Enough)
    clock: Callable[[], float] = time.time
    price_ttl_seconds: float = 3600.0
    # (size, region, may use the network) -> prices: the Retail Prices API, else the dated snapshot.
    vm_prices: Callable[[str, str, bool], VmPrices] = field(
        default=lambda size, region, network: load_vm_prices(size, region, allow_network=network))
    _prices: dict[str, tuple[float, VmPrices]] = field(default_factory=dict, init=False, repr=False)

    def prices(self, size: str = "") -> VmPrices:
        """The prices of *size* (default: the primary ``vm_size``), read at most once per TTL."""
        size = size or self.vm_size
        now = self.clock()
        cached = self._prices.get(size)
        if cached is None or now - cached[0] > self.price_ttl_seconds:
            cached = self._prices[size] = (now, self.vm_prices(size, self.region, self.live_prices))
        return cached[1]

    def spot_price_of(self, size: str, primary: Sourced) -> Sourced:
        """What a slot of *size* costs per hour (a stack's fallback size is priced as itself).
        *primary* is this round's price of the primary size."""
        if not size or size == self.vm_size:
            return primary
        found: VmPrices | str
        try:
            found = self.prices(size)
        except PriceSourceError as err:
            found = str(err)
        return size_spot_price(self.flags.get("spot_price_per_hour"), primary, size, found, self.region)

    def read(self) -> FleetInputs:
        now = self.clock()
        days = sorted({day_of(now - offset * DAY) for offset in range(self.window_days)})
        since = now - self.window_days * DAY  # before the first day's midnight: the days are whole
        # Summed: rollups for compacted days, raw records for the rest (today), never 10^8 records a round.
        usage = [t for day in days for t in read_usage_totals(self.store, day)]
        evictions = [e for day in days for e in read_evictions(self.store, day) if e.seen_at >= since]
        audit = [a for day in days for a in read_audit(self.store, day) if a.at >= since]
        paid = paid_time(read_power_span(self.store, since, now), audit, since, now)
        return resolve_inputs(
            usage=usage, evictions=evictions, boots=read_boots(self.store),
            paid_node_seconds=paid.seconds if paid else 0.0,
            prices=self.prices(), api_price=load_price_book().minute_price(self.api_model), vm_size=self.vm_size,
            region=self.region, window=f"in the {self.window_days} days since {days[0]}", flags=self.flags,
            enough=self.enough)
