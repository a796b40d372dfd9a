"""The monthly cap on metered-API spending: how much of it the month has used, and whether routing to
the API is still allowed. Pure; the controller reads the month's usage records and alerts.

Spend counts what the API paths did (usage with ``path = api``, summed as `runtime.records.UsageTotal`):
transcribed audio at the price book's per-minute price, translations' tokens in and out at the book's
token prices for their model. Tokens of a model the book does not price are counted apart
(``unpriced_tokens``) and shown, never silently taken as free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from policies.prices import PriceBook, PriceBookError
from runtime.records import UsageTotal

ALERT_SHARE = 0.8


@dataclass(frozen=True)
class Budget:
    monthly_usd: float = math.inf  # no cap
    override: bool = False  # route past the cap anyway (an operator's explicit choice)

    def __post_init__(self) -> None:
        if math.isnan(self.monthly_usd) or self.monthly_usd < 0:
            raise ValueError(f"the API budget must be 0 or more USD a month, got {self.monthly_usd!r}")


@dataclass(frozen=True)
class BudgetState:
    month: str
    spent_usd: float
    cap_usd: float  # inf: no cap
    share: float  # spent / cap (0 without a cap)
    level: str  # "" | "80%" | "100%": the highest level crossed
    routing_allowed: bool
    unpriced_tokens: int = 0  # API tokens of models the price book has no price for

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cap_usd"] = None if math.isinf(self.cap_usd) else self.cap_usd
        return data


def api_spend(usage: Iterable[UsageTotal], price_per_audio_minute: float,
              book: PriceBook | None = None) -> tuple[float, int]:
    """USD the API paths spent, and the tokens no price covers."""
    usd, unpriced = 0.0, 0
    for r in usage:
        if r.path != "api" or r.outcome != "done":
            continue
        if r.task == "transcribe":
            usd += r.audio_seconds / 60 * price_per_audio_minute
            continue
        try:
            price = book.token_price(r.model) if book is not None else None
        except PriceBookError:
            price = None
        if price is None:
            unpriced += r.tokens_in + r.tokens_out
        else:
            usd += (r.tokens_in * price.input_per_million_tokens + r.tokens_out * price.output_per_million_tokens) / 1e6
    return round(usd, 6), unpriced


def budget_state(budget: Budget, month: str, spent_usd: float, unpriced_tokens: int = 0) -> BudgetState:
    if math.isinf(budget.monthly_usd):
        return BudgetState(month, spent_usd, math.inf, 0.0, "", True, unpriced_tokens)
    share = spent_usd / budget.monthly_usd if budget.monthly_usd > 0 else math.inf
    level = "100%" if share >= 1.0 else "80%" if share >= ALERT_SHARE else ""
    return BudgetState(month, spent_usd, budget.monthly_usd, round(share, 4) if math.isfinite(share) else 1.0,
                       level, share < 1.0 or budget.override, unpriced_tokens)
