"""The monthly API budget: what the API paths spent, by the price book, and when routing stops."""

from __future__ import annotations

import math

import pytest

from policies.budget import Budget, api_spend, budget_state
from policies.prices import load_price_book
from runtime.records import UsageRecord, totals_of


def usage(task: str, model: str, audio: float = 0.0, tokens_in: int = 0, tokens_out: int = 0,
          path: str = "api", outcome: str = "done") -> UsageRecord:
    return UsageRecord("api-1", "j", "s", task, audio, tokens_in, tokens_out, "openai", model, 0.0, 1.0, outcome,
                       path=path)


def test_spend_prices_audio_and_tokens_and_counts_unpriced_tokens_apart() -> None:
    book = load_price_book()
    mini = book.token_price("gpt-4o-mini")
    records = [usage("transcribe", "whisper-1", audio=600.0),  # 10 minutes
               usage("translate", "gpt-4o-mini", tokens_in=1_000_000, tokens_out=500_000),
               usage("translate", "no-such-model", tokens_in=10, tokens_out=5),
               usage("transcribe", "large-v3", audio=6000.0, path="fleet"),  # the fleet's: not API spend
               usage("transcribe", "whisper-1", audio=600.0, outcome="failed")]
    spent, unpriced = api_spend(totals_of(records), 0.006, book)
    expected = 10 * 0.006 + mini.input_per_million_tokens + 0.5 * mini.output_per_million_tokens
    assert spent == pytest.approx(expected) and unpriced == 15


@pytest.mark.parametrize("spent, level, allowed", [(50.0, "", True), (80.0, "80%", True), (100.0, "100%", False)])
def test_levels_and_the_cap(spent: float, level: str, allowed: bool) -> None:
    state = budget_state(Budget(100.0), "2026-12", spent)
    assert (state.level, state.routing_allowed) == (level, allowed)
    assert budget_state(Budget(100.0, override=True), "2026-12", 150.0).routing_allowed


def test_no_cap_and_bad_caps() -> None:
    assert budget_state(Budget(), "2026-12", 1e6).routing_allowed and Budget().monthly_usd == math.inf
    assert not budget_state(Budget(0.0), "2026-12", 0.0).routing_allowed  # a zero budget: nothing to the API
    for bad in (float("nan"), -1.0):
        with pytest.raises(ValueError, match="API budget"):
            Budget(bad)
