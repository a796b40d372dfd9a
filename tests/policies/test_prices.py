"""Price sources against a local fake of the Azure Retail Prices API that misbehaves (500, garbage, a
stall, paging loops), the dated snapshot fallback, and the API price book with user overrides."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from policies.prices import (
    PRICE_BOOK_PATH,
    SNAPSHOT_PATH,
    MinutePrice,
    PriceBookError,
    PriceNotFound,
    PriceSourceError,
    RetailPricesClient,
    TokenPrice,
    load_price_book,
    load_snapshot,
    load_vm_prices,
)
from runtime.retry import Backoff, RetryPolicy

SKU, REGION = "Standard_NC4as_T4_v3", "eastus"
FAST = RetryPolicy(3, Backoff(base_seconds=0.01, cap_seconds=0.05))


def item(sku_name: str, price: float, product: str = "Virtual Machines NCasT4_v3 Series",
         date: str = "2024-02-01T00:00:00Z") -> dict[str, Any]:
    return {"currencyCode": "USD", "retailPrice": price, "unitPrice": price, "armRegionName": REGION,
            "armSkuName": SKU, "effectiveStartDate": date, "meterName": sku_name, "skuName": sku_name,
            "productName": product, "serviceName": "Virtual Machines", "unitOfMeasure": "1 Hour",
            "type": "Consumption"}


class FakeRetailPrices(ThreadingHTTPServer):
    """Serves ``/<scenario>`` in the Retail Prices format; records every request's path and query."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[str] = []
        self.release = threading.Event()  # the stalled handler waits on this instead of sleeping blind

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def page(self, path: str) -> tuple[int, bytes]:
        windows = "Virtual Machines NCasT4_v3 Series Windows"
        pages: dict[str, tuple[list[dict[str, Any]], str | None]] = {
            "/ok": ([item("NC4as T4 v3", 0.526), item("NC4as T4 v3", 0.9, windows)], f"{self.url}/ok-2?$skip=100"),
            "/ok-2": ([item("NC4as T4 v3 Low Priority", 0.1), item("NC4as T4 v3 Spot", 0.0627),
                       item("NC4as T4 v3 Spot", 0.2, windows),
                       item("NC4as T4 v3 Spot", 0.05, date="2020-01-01T00:00:00Z")], None),
            "/spot-only": ([item("NC4as T4 v3 Spot", 0.0627)], None),
            "/empty": ([], None),
            "/windows-only": ([item("NC4as T4 v3", 0.9, windows)], None),
            "/loop": ([], f"{self.url}/loop"),
            "/file-link": ([], "file:///etc/passwd"),
        }
        if path in pages:
            items, link = pages[path]
            return 200, json.dumps({"BillingCurrency": "USD", "Items": items, "NextPageLink": link,
                                    "Count": len(items)}).encode()
        if path == "/error":
            return 500, b"internal error"
        if path == "/garbage":
            return 200, b"<html>not json</html>"
        if path == "/no-items":
            return 200, b'{"Count": 0}'
        if path == "/stall":
            self.release.wait(5)
            return 200, b'{"Items": [], "NextPageLink": null}'
        return 404, b"not found"


class Handler(BaseHTTPRequestHandler):
    server: FakeRetailPrices

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        status, body = self.server.page(urllib.parse.urlsplit(self.path).path)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[FakeRetailPrices]:
    server = FakeRetailPrices()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def client(fake: FakeRetailPrices, scenario: str, timeout: float = 5.0) -> RetailPricesClient:
    return RetailPricesClient(base_url=f"{fake.url}/{scenario}", timeout=timeout, proxies=False, retry=FAST)


def test_reads_every_page_and_keeps_linux_spot_and_regular(fake: FakeRetailPrices) -> None:
    prices = client(fake, "ok").vm_prices(SKU, REGION)
    assert prices.pay_as_you_go_price_per_hour == 0.526
    assert prices.spot_price_per_hour == 0.0627  # not Windows spot, not Low Priority, not the superseded 0.05
    assert prices.currency == "USD" and prices.effective_date == "2024-02-01"
    assert prices.source.startswith("Azure Retail Prices API")
    assert len(fake.requests) == 2 and fake.requests[1].startswith("/ok-2")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(fake.requests[0]).query)
    assert query["$filter"] == [f"armSkuName eq '{SKU}' and armRegionName eq '{REGION}' and "
                                "priceType eq 'Consumption'"]


def test_a_missing_kind_of_price_is_none(fake: FakeRetailPrices) -> None:
    prices = client(fake, "spot-only").vm_prices(SKU, REGION)
    assert prices.pay_as_you_go_price_per_hour is None and prices.spot_price_per_hour == 0.0627


@pytest.mark.parametrize("scenario", ["empty", "windows-only"])
def test_no_linux_price_is_not_found(fake: FakeRetailPrices, scenario: str) -> None:
    with pytest.raises(PriceNotFound, match="no Linux consumption price for Standard_NC4as_T4_v3 in eastus"):
        client(fake, scenario).vm_prices(SKU, REGION)


@pytest.mark.parametrize("scenario, message", [
    ("error", "answered HTTP 500"),
    ("garbage", "not JSON"),
    ("no-items", "no Items list"),
    ("loop", "in a loop"),
    ("file-link", "refusing to follow a non-HTTP link"),
])
def test_failures_become_price_source_errors(fake: FakeRetailPrices, scenario: str, message: str) -> None:
    with pytest.raises(PriceSourceError, match=message):
        client(fake, scenario).vm_prices(SKU, REGION)


def test_a_server_error_is_retried_under_the_policy_and_garbage_is_not(fake: FakeRetailPrices) -> None:
    with pytest.raises(PriceSourceError, match="answered HTTP 500"):
        client(fake, "error").vm_prices(SKU, REGION)
    assert len(fake.requests) == FAST.attempts  # a 500 may heal
    fake.requests.clear()
    with pytest.raises(PriceSourceError, match="not JSON"):
        client(fake, "garbage").vm_prices(SKU, REGION)
    assert len(fake.requests) == 1  # an answer that is not JSON will not


def test_a_stalled_server_times_out(fake: FakeRetailPrices) -> None:
    with pytest.raises(PriceSourceError, match=r"did not answer within 0.2 s"):
        client(fake, "stall", timeout=0.2).vm_prices(SKU, REGION)


def test_unreachable_server() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    unreachable = RetailPricesClient(base_url=f"http://127.0.0.1:{port}/x", timeout=2, proxies=False, retry=FAST)
    with pytest.raises(PriceSourceError, match="cannot reach"):
        unreachable.vm_prices(SKU, REGION)


def test_names_that_could_break_the_filter_are_refused() -> None:
    with pytest.raises(ValueError, match="arm_sku_name"):
        RetailPricesClient().vm_prices("x' or 1 eq 1 or 'a", REGION)
    with pytest.raises(ValueError, match="timeout"):
        RetailPricesClient(timeout=0)


def test_falls_back_to_the_dated_snapshot_and_says_why(fake: FakeRetailPrices) -> None:
    prices = load_vm_prices(SKU, REGION, client=client(fake, "error"))
    assert (prices.pay_as_you_go_price_per_hour, prices.spot_price_per_hour) == (0.526, 0.0627)
    assert prices.effective_date == "2026-11-28"
    assert "offline snapshot retrieved 2026-11-28" in prices.source and "HTTP 500" in prices.source


def test_live_prices_win_when_the_api_answers(fake: FakeRetailPrices) -> None:
    assert load_vm_prices(SKU, REGION, client=client(fake, "ok")).source.startswith("Azure Retail Prices API")


def test_not_found_from_a_working_api_is_not_papered_over(fake: FakeRetailPrices) -> None:
    with pytest.raises(PriceNotFound):
        load_vm_prices(SKU, REGION, client=client(fake, "empty"))


def test_offline_never_touches_the_network(fake: FakeRetailPrices) -> None:
    prices = load_vm_prices(SKU, REGION, client=client(fake, "ok"), allow_network=False)
    assert fake.requests == [] and "network not used" in prices.source


def test_snapshot_contents_and_errors(tmp_path: Path) -> None:
    snapshot = load_snapshot()
    assert snapshot.retrieved == "2026-11-28" and "SkyPilot" in snapshot.source
    assert load_snapshot(SNAPSHOT_PATH).prices[0]["spotPerHour"] == 0.0627
    with pytest.raises(PriceNotFound, match="has: Standard_NC4as_T4_v3 in eastus"):
        load_vm_prices("Standard_NC8as_T4_v3", REGION, allow_network=False)
    broken = tmp_path / "snapshot.json"
    broken.write_text('{"prices": []}')
    with pytest.raises(PriceSourceError, match="malformed"):
        load_vm_prices(SKU, REGION, snapshot_path=broken, allow_network=False)
    with pytest.raises(PriceSourceError, match="does not exist"):
        load_snapshot(tmp_path / "missing.json")


@pytest.mark.parametrize("model, given_in, given_out", [
    ("gpt-4o-mini", 0.15, 0.60), ("gpt-4.1-mini", 0.40, 1.60), ("gpt-5-mini", 0.25, 2.00),
    ("gemini-2.0-flash", 0.10, 0.40), ("claude-haiku-4-5", 1.00, 5.00),
])
def test_price_book_token_prices(model: str, given_in: float, given_out: float) -> None:
    price = load_price_book().token_price(model)
    assert (price.input_per_million_tokens, price.output_per_million_tokens) == (given_in, given_out)
    assert price.as_of == "2026-08" and "llm-prices" in price.source


def test_price_book_is_versioned_dated_and_sourced() -> None:
    book = load_price_book()
    assert book.version == 1 and book.as_of == "2026-08" and book.currency == "USD"
    assert book.minute_price("whisper-1") == MinutePrice("whisper-1", 0.006, book.minute_price("whisper-1").source,
                                                         "2026-08")
    raw = json.loads(PRICE_BOOK_PATH.read_text())["models"]
    assert all(entry["source"] and entry["as_of"] for entry in raw.values())
    with pytest.raises(PriceBookError, match="known: gpt-4o-mini"):
        book.token_price("gpt-9")
    with pytest.raises(PriceBookError, match="known: whisper-1"):
        book.minute_price("gpt-4o-mini")


def test_overrides_replace_entries_by_model_name(tmp_path: Path) -> None:
    book = load_price_book(overrides={
        "gpt-4o-mini": {"input_per_million_tokens": 0.1, "output_per_million_tokens": 0.5,
                        "source": "our contract", "as_of": "2026-10"},
        "whisper-1": {"per_minute": 0.004},
        "local-asr": {"per_minute": 0.001},
    })
    assert book.token_price("gpt-4o-mini") == TokenPrice("gpt-4o-mini", 0.1, 0.5, "our contract", "2026-10")
    assert book.minute_price("whisper-1").per_minute == 0.004
    assert book.minute_price("whisper-1").source.startswith("user override")
    assert book.minute_price("local-asr").as_of == "undated"
    assert book.token_price("gpt-5-mini").output_per_million_tokens == 2.0  # untouched
    toml = tmp_path / "prices.toml"
    toml.write_text('["gpt-5-mini"]\ninput_per_million_tokens = 0.2\noutput_per_million_tokens = 1.5\n')
    overridden = load_price_book(overrides=toml).token_price("gpt-5-mini")
    assert overridden.output_per_million_tokens == 1.5 and str(toml) in overridden.source


@pytest.mark.parametrize("entry, message", [
    ({"input_per_million_tokens": -1, "output_per_million_tokens": 1}, "input_per_million_tokens must be a number"),
    ({"input_per_million_tokens": 1}, "output_per_million_tokens must be a number"),
    ({"per_minute": 0.1, "output_per_million_tokens": 1}, "both per_minute and per-token"),
    ({"per_minute": "cheap"}, "per_minute must be a number"),
    ({"price": 1}, "needs per_minute"),
    ("0.5", "must be a table"),
    ({"per_minute": 0.1, "source": ""}, "source must be a non-empty string"),
])
def test_invalid_overrides_name_the_model_and_field(entry: object, message: str) -> None:
    with pytest.raises(PriceBookError, match=message) as err:
        load_price_book(overrides={"gpt-4o-mini": entry})
    assert "'gpt-4o-mini'" in str(err.value)


def test_broken_books_and_override_files(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[unclosed")
    with pytest.raises(PriceBookError, match="not valid TOML"):
        load_price_book(overrides=bad_toml)
    with pytest.raises(PriceBookError, match="does not exist"):
        load_price_book(overrides=tmp_path / "missing.toml")
    book = tmp_path / "book.json"
    book.write_text('{"version": 2, "models": {}}')
    with pytest.raises(PriceBookError, match="has version 2; this spotkit reads version 1"):
        load_price_book(book)
    book.write_text('{"version": 1, "models": {}}')
    with pytest.raises(PriceBookError, match="no models"):
        load_price_book(book)
    book.write_text("{")
    with pytest.raises(PriceBookError, match="not valid JSON"):
        load_price_book(book)
