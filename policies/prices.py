"""Where the break-even's prices come from: Azure's Retail Prices API, a dated offline snapshot, and a
versioned book of metered-API prices that a user's config can override.

Every price carries its source and date, because a break-even computed from an unnamed, undated price
cannot be checked. The API client goes through the kit's HTTP client (`runtime.http`: a timeout on
every call, transient failures retried under one `RetryPolicy`) and maps every network, HTTP and JSON
failure to :class:`PriceSourceError`; :func:`load_vm_prices` then falls back to the snapshot and says
so in ``source``.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import SpotkitError
from runtime.http import HttpClient, HttpError
from runtime.retry import Backoff, GaveUp, RetryPolicy

DATA = Path(__file__).resolve().parent / "data"
SNAPSHOT_PATH = DATA / "azure_prices_snapshot.json"
PRICE_BOOK_PATH = DATA / "api_price_book.json"
RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
PRICE_BOOK_VERSION = 1
_MAX_PAGES = 50  # a filtered query returns a handful of rows; more pages means a paging loop
_ARM_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # also keeps quotes out of the OData filter


class PriceSourceError(SpotkitError):
    """A price source failed (unreachable, HTTP error, not JSON, unexpected shape)."""


class PriceNotFound(PriceSourceError):
    """The source answered, but has no price for that SKU and region (a typo, or not sold there)."""


class PriceBookError(SpotkitError):
    """The API price book or a user override is malformed; the message names the entry and field."""


@dataclass(frozen=True)
class VmPrices:
    """Linux hourly prices for one VM size in one region; ``None`` where the source has no such row."""

    pay_as_you_go_price_per_hour: float | None
    spot_price_per_hour: float | None
    currency: str
    effective_date: str
    source: str


def _arm_name(kind: str, value: str) -> str:
    if not _ARM_NAME.match(value):
        raise ValueError(f"{kind} must be letters, digits and underscores (e.g. Standard_NC4as_T4_v3, eastus), "
                         f"got {value!r}")
    return value


PRICES_RETRY = RetryPolicy(3, Backoff(base_seconds=1.0, cap_seconds=10.0))  # a public API: a short, polite retry


class RetailPricesClient:
    """Reads the Azure Retail Prices API (unauthenticated, paged by ``NextPageLink``)."""

    def __init__(self, base_url: str = RETAIL_PRICES_URL, timeout: float = 10.0,
                 retry: RetryPolicy = PRICES_RETRY,
                 proxies: bool = True) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be greater than 0 seconds, got {timeout!r}")
        self.base_url = base_url
        self.timeout = timeout
        self.http = HttpClient(timeout, retry, proxies=proxies, headers={"Accept": "application/json"})

    def vm_prices(self, arm_sku_name: str, arm_region_name: str) -> VmPrices:
        """Pay-as-you-go and spot Linux prices; raises PriceNotFound when neither exists."""
        sku = _arm_name("arm_sku_name", arm_sku_name)
        region = _arm_name("arm_region_name", arm_region_name)
        odata = f"armSkuName eq '{sku}' and armRegionName eq '{region}' and priceType eq 'Consumption'"
        items = self._all_items(f"{self.base_url}?$filter={urllib.parse.quote(odata)}")
        regular: list[dict[str, Any]] = []
        spot: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict) or "Windows" in str(item.get("productName", "")):
                continue
            names = f"{item.get('skuName', '')} {item.get('meterName', '')}"
            if "Low Priority" in names or item.get("unitOfMeasure", "1 Hour") != "1 Hour":
                continue
            (spot if "Spot" in names else regular).append(item)
        if not regular and not spot:
            raise PriceNotFound(f"the Azure Retail Prices API has no Linux consumption price for {sku} in {region} "
                                "(check the size's ARM name and that the region sells it)")
        chosen = [row for row in (_newest(regular), _newest(spot)) if row is not None]
        return VmPrices(
            pay_as_you_go_price_per_hour=_price(_newest(regular)), spot_price_per_hour=_price(_newest(spot)),
            currency=str(chosen[0].get("currencyCode", "USD")),
            effective_date=max(str(row.get("effectiveStartDate", ""))[:10] for row in chosen),
            source=f"Azure Retail Prices API ({self.base_url})")

    def _all_items(self, url: str) -> list[Any]:
        items: list[Any] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url:
            if next_url in seen or len(seen) >= _MAX_PAGES:
                raise PriceSourceError(f"the Azure Retail Prices API paged more than {len(seen)} times or in a loop "
                                       f"(at {next_url})")
            seen.add(next_url)
            page = self._get_json(next_url)
            page_items, link = page.get("Items"), page.get("NextPageLink")
            if not isinstance(page_items, list) or not (link is None or isinstance(link, str)):
                raise PriceSourceError(f"unexpected reply from the Azure Retail Prices API at {next_url}: "
                                       "no Items list")
            items.extend(page_items)
            next_url = link or None
        return items

    def _get_json(self, url: str) -> dict[str, Any]:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise PriceSourceError(f"refusing to follow a non-HTTP link from the Azure Retail Prices API: {url}")
        try:
            reply = self.http.get(url)
        except (HttpError, GaveUp) as err:
            last = err.last if isinstance(err, GaveUp) else err
            if isinstance(last, HttpError) and last.status is not None:
                raise PriceSourceError(f"the Azure Retail Prices API answered HTTP {last.status} for {url} "
                                       f"({err})") from None
            if isinstance(last, HttpError) and last.kind == "timeout":
                raise self._timed_out(url) from None
            raise PriceSourceError(f"cannot reach the Azure Retail Prices API at {url} ({err})") from None
        try:
            page = json.loads(reply.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PriceSourceError(f"the Azure Retail Prices API answered something that is not JSON at {url}: "
                                   f"{reply.body[:80]!r}") from None
        if not isinstance(page, dict):
            raise PriceSourceError(f"unexpected reply from the Azure Retail Prices API at {url}: not a JSON object")
        return page

    def _timed_out(self, url: str) -> PriceSourceError:
        return PriceSourceError(f"the Azure Retail Prices API did not answer within {self.timeout:g} s ({url})")


def _newest(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row in force: latest effectiveStartDate, the cheaper one on a tie."""
    usable = [row for row in rows if _price(row) is not None]
    if not usable:
        return None
    return max(usable, key=lambda row: (str(row.get("effectiveStartDate", "")), -(_price(row) or 0.0)))


def _price(row: dict[str, Any] | None) -> float | None:
    value = None if row is None else row.get("retailPrice", row.get("unitPrice"))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


@dataclass(frozen=True)
class Snapshot:
    retrieved: str
    source: str
    note: str
    prices: tuple[dict[str, Any], ...]


def load_snapshot(path: Path | None = None) -> Snapshot:
    """The dated offline price snapshot (``policies/data/azure_prices_snapshot.json`` by default)."""
    path = path or SNAPSHOT_PATH
    try:
        data = json.loads(path.read_text())
        snapshot = Snapshot(retrieved=str(data["retrieved"]), source=str(data["source"]),
                            note=str(data.get("note", "")), prices=tuple(data["prices"]))
    except FileNotFoundError:
        raise PriceSourceError(f"the price snapshot {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise PriceSourceError(f"the price snapshot {path} is malformed ({err!r}); it needs retrieved, source "
                               "and a prices list") from None
    return snapshot


def snapshot_vm_prices(arm_sku_name: str, arm_region_name: str, path: Path | None = None,
                       reason: str = "") -> VmPrices:
    """Prices from the snapshot; ``reason`` (why the API was not used) goes into ``source``."""
    snapshot = load_snapshot(path)
    for row in snapshot.prices:
        if (isinstance(row, dict) and str(row.get("armSkuName")).lower() == arm_sku_name.lower()
                and str(row.get("armRegionName")).lower() == arm_region_name.lower()):
            why = f"; {reason}" if reason else ""
            return VmPrices(pay_as_you_go_price_per_hour=_price({"retailPrice": row.get("payAsYouGoPerHour")}),
                            spot_price_per_hour=_price({"retailPrice": row.get("spotPerHour")}),
                            currency=str(row.get("currency", "USD")), effective_date=snapshot.retrieved,
                            source=f"offline snapshot retrieved {snapshot.retrieved} from {snapshot.source}{why}")
    known = ", ".join(f"{row.get('armSkuName')} in {row.get('armRegionName')}" for row in snapshot.prices
                      if isinstance(row, dict))
    raise PriceNotFound(f"the offline price snapshot ({snapshot.retrieved}) has no price for {arm_sku_name} in "
                        f"{arm_region_name}; it has: {known or 'nothing'}")


def load_vm_prices(sku: str, region: str, client: RetailPricesClient | None = None,
                   snapshot_path: Path | None = None, allow_network: bool = True) -> VmPrices:
    """Live prices when the API answers; the snapshot (saying why, and how old) when it cannot.

    A PriceNotFound from a working API is raised, not papered over with the snapshot: the API
    answering "no such price" means the name is wrong, and an old price would hide that.
    """
    if not allow_network:
        return snapshot_vm_prices(sku, region, snapshot_path, reason="network not used")
    try:
        return (client or RetailPricesClient()).vm_prices(sku, region)
    except PriceNotFound:
        raise
    except PriceSourceError as err:
        return snapshot_vm_prices(sku, region, snapshot_path, reason=f"live API failed: {err}")


@dataclass(frozen=True)
class TokenPrice:
    """USD per 1M tokens, input and output, for one metered model."""

    model: str
    input_per_million_tokens: float
    output_per_million_tokens: float
    source: str
    as_of: str


@dataclass(frozen=True)
class MinutePrice:
    """USD per audio minute for one metered transcription model."""

    model: str
    per_minute: float
    source: str
    as_of: str


@dataclass(frozen=True)
class PriceBook:
    version: int
    as_of: str
    currency: str
    tokens: dict[str, TokenPrice]
    transcription: dict[str, MinutePrice]

    def token_price(self, model: str) -> TokenPrice:
        if model not in self.tokens:
            raise PriceBookError(f"no token price for {model!r} in the price book; known: {', '.join(self.tokens)}")
        return self.tokens[model]

    def minute_price(self, model: str) -> MinutePrice:
        if model not in self.transcription:
            raise PriceBookError(f"no per-minute price for {model!r} in the price book; "
                                 f"known: {', '.join(self.transcription)}")
        return self.transcription[model]


def _number(where: str, entry: Mapping[str, Any], key: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise PriceBookError(f"{where}: {key} must be a number greater than 0, got {value!r}")
    return float(value)


def _text(where: str, entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PriceBookError(f"{where}: {key} must be a non-empty string (where the price comes from, and when)")
    return value


def _entry(where: str, model: str, entry: Any) -> TokenPrice | MinutePrice:
    if not isinstance(entry, Mapping):
        raise PriceBookError(f"{where}: must be a table of prices, got {entry!r}")
    token_keys = {"input_per_million_tokens", "output_per_million_tokens"}
    if "per_minute" in entry and token_keys & set(entry):
        raise PriceBookError(f"{where}: has both per_minute and per-token prices; a model is billed one way")
    if "per_minute" in entry:
        return MinutePrice(model, _number(where, entry, "per_minute"), _text(where, entry, "source"),
                           _text(where, entry, "as_of"))
    if token_keys & set(entry):
        return TokenPrice(model, _number(where, entry, "input_per_million_tokens"),
                          _number(where, entry, "output_per_million_tokens"), _text(where, entry, "source"),
                          _text(where, entry, "as_of"))
    raise PriceBookError(f"{where}: needs per_minute, or input_per_million_tokens and output_per_million_tokens")


def _read_overrides(overrides: Mapping[str, Any] | Path) -> tuple[str, Mapping[str, Any]]:
    if isinstance(overrides, Path):
        try:
            return str(overrides), tomllib.loads(overrides.read_text())
        except FileNotFoundError:
            raise PriceBookError(f"price override file {overrides} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise PriceBookError(f"price override file {overrides} is not valid TOML: {err}") from None
    return "price overrides", overrides


def load_price_book(path: Path | None = None, overrides: Mapping[str, Any] | Path | None = None) -> PriceBook:
    """The versioned API price book, with user overrides replacing whole entries by model name.

    ``overrides`` maps model names to entries shaped like the book's (a TOML file of
    ``["gpt-4o-mini"]`` tables, or the same as a dict). An override without ``source``/``as_of`` is
    marked "user override" / "undated" rather than rejected: it is the user's own number.
    """
    path = path or PRICE_BOOK_PATH
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PriceBookError(f"the price book {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PriceBookError(f"the price book {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise PriceBookError(f"the price book {path} must be a JSON object with version and models")
    if data.get("version") != PRICE_BOOK_VERSION:
        raise PriceBookError(f"the price book {path} has version {data.get('version')!r}; "
                             f"this spotkit reads version {PRICE_BOOK_VERSION}")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise PriceBookError(f"the price book {path} has no models table")
    entries = {name: _entry(f"price book {path}, model {name!r}", name, entry) for name, entry in models.items()}
    if overrides is not None:
        origin, table = _read_overrides(overrides)
        for name, entry in table.items():
            filled = ({"source": f"user override ({origin})", "as_of": "undated", **entry}
                      if isinstance(entry, Mapping) else entry)
            entries[str(name)] = _entry(f"{origin}, model {name!r}", str(name), filled)
    return PriceBook(
        version=PRICE_BOOK_VERSION, as_of=str(data.get("as_of", "")), currency=str(data.get("currency", "USD")),
        tokens={name: e for name, e in entries.items() if isinstance(e, TokenPrice)},
        transcription={name: e for name, e in entries.items() if isinstance(e, MinutePrice)})
