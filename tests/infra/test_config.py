"""Stack config: the shipped sample validates; every bad key fails with one message naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.config import StackConfigError, parse_stack_config

REPO = Path(__file__).resolve().parents[2]


def sample() -> dict[str, Any]:
    config = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("spotkit:")}


def test_sample_stack_validates() -> None:
    cfg = parse_stack_config(sample())
    assert (cfg.vm_size, cfg.slot_count, cfg.spot_price_cap_per_hour) == ("Standard_NC4as_T4_v3", 2, 0.15)
    assert cfg.tags["environment"] == "dev" and cfg.tags["cost-center"]
    assert cfg.all_sizes == ("Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3")


def test_defaults_fill_what_is_optional() -> None:
    minimal = {k: v for k, v in sample().items()
               if k in ("location", "adminSshPublicKey", "operatorCidr", "tags")}
    cfg = parse_stack_config(minimal)
    assert (cfg.vm_size, cfg.spot_price_cap_per_hour, cfg.data_disk_sku) == (
        "Standard_NC4as_T4_v3", -1.0, "Premium_LRS")


@pytest.mark.parametrize("change, key, words", [
    ({"vmSize": "Standard_D4s_v5"}, "vmSize", "unknown VM size"),
    ({"fallbackSizes": ["Standard_NC6"]}, "fallbackSizes", "unknown VM size"),
    ({"maxPricePerHour": 0}, "maxPricePerHour", "-1"),
    ({"maxPricePerHour": -5}, "maxPricePerHour", "positive"),
    ({"maxPricePerHour": 0.123456}, "maxPricePerHour", "5 decimals"),
    ({"slotCount": -1}, "slotCount", "0..50"),
    ({"slotCount": "many"}, "slotCount", "not a int"),
    ({"minRunning": 5}, "minRunning", "0..slotCount"),
    ({"adminSshPublicKey": None}, "adminSshPublicKey", "is required"),
    ({"adminSshPublicKey": "not a key"}, "adminSshPublicKey", "not an OpenSSH public key"),
    ({"operatorCidr": "0.0.0.0/0"}, "operatorCidr", "too much of the internet"),
    ({"operatorCidr": "office"}, "operatorCidr", "not a CIDR"),
    ({"dataDiskSku": "UltraSSD"}, "dataDiskSku", "use one of"),
    ({"dataDiskSizeGb": 8}, "dataDiskSizeGb", "32..4096"),
    ({"translatorProvider": "gpt"}, "translatorProvider", "use one of"),
    ({"translatorProvider": "openai"}, "translatorProvider", "needs a metered API"),
    ({"azureOpenAiResourceId": "/subscriptions/x/resourceGroups/y"}, "azureOpenAiResourceId", "not an Azure OpenAI"),
    ({"azureOpenAiResourceId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ai/providers/"
                               "Microsoft.CognitiveServices/accounts/acme"}, "azureOpenAiEndpoint", "is required"),
    ({"azureOpenAiEndpoint": "https://acme.openai.azure.com"}, "azureOpenAiResourceId", "is required"),
    ({"azureOpenAiApiVersion": "latest"}, "azureOpenAiApiVersion", "not an API version"),
    ({"translatorModel": "a b"}, "translatorModel", "not a model"),
    ({"apiWorkers": 2}, "apiWorkers", "needs a metered API"),
    ({"apiWorkers": 99}, "apiWorkers", "0..16"),
    ({"gatewayPort": 80}, "gatewayPort", "1024 to 65535"),
    ({"queueShards": 0}, "queueShards", "1..64"), ({"queuePack": 33}, "queuePack", "1..32"),
    ({"queueShards": "four"}, "queueShards", "not a int"),
    ({"gatewayPort": "https"}, "gatewayPort", "not a int"),
    ({"apiBudgetUsd": float("nan")}, "apiBudgetUsd", "not a float"),
    ({"apiBudgetUsd": -5}, "apiBudgetUsd", "0 or more"),
    ({"alertEmails": ["nobody"]}, "alertEmails", "not an e-mail"),
    ({"runbookBaseUrl": "ftp://wiki/runbooks"}, "runbookBaseUrl", "https URL"),
    ({"tags": {"environment": "dev"}}, "tags", "cost-center"),
    ({"location": None}, "location", "is required"),
    ({"spotkitPipSpec": "spotkit\nrm -rf /"}, "spotkitPipSpec", "one pip requirement"),
    ({"models": []}, "models", "at least one model"),
    ({"models": [""]}, "models", "at least one model"),
    ({"vnetCidr": "10.40.0.0/33"}, "vnetCidr", "not a network address"),
    ({"vnetCidr": "10.40.0.1/16"}, "vnetCidr", "not a network address"),
    ({"vnetCidr": "8.8.0.0/16"}, "vnetCidr", "private IPv4"),
    ({"vnetCidr": "10.40.0.0/24"}, "vnetCidr", "three /24 subnets"),
    ({"namePrefix": "spotkit-production"}, "namePrefix", "Azure allows 24"),
    ({"slotCount": float("inf")}, "slotCount", "not a int"),
    ({"segmentRetentionDays": float("nan")}, "segmentRetentionDays", "not a int"),
    ({"maxPricePerHour": float("nan")}, "maxPricePerHour", "not a float"),
    ({"slotCount": True}, "slotCount", "not a int"),
])
def test_invalid_config_names_the_key(change: dict[str, Any], key: str, words: str) -> None:
    raw = {**sample(), **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(StackConfigError) as err:
        parse_stack_config(raw)
    message = str(err.value)
    assert f"spotkit:{key}" in message and words in message
    assert "\n" not in message
    assert "pulumi config set" in message  # and the fix


def test_every_derived_name_fits_with_pulumis_suffix() -> None:
    """The longest prefix the check admits makes names Azure accepts (checked against its limits)."""
    from infra import names

    cfg = parse_stack_config({**sample(), "namePrefix": "abcdefghijklm"})
    assert len(names.storage_account(cfg.name_prefix)) + names.AUTONAME_SUFFIX <= 24
    assert len(names.key_vault(cfg.name_prefix)) + names.AUTONAME_SUFFIX <= 24
    assert names.too_long("abcdefghijklmn")  # one more letter: refused up front


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["vmSize", "fallbackSizes", "slotCount", "minRunning", "maxPricePerHour",
                                        "dataDiskSizeGb", "dataDiskSku", "models", "translatorProvider",
                                        "translatorModel", "azureOpenAiResourceId", "azureOpenAiEndpoint",
                                        "apiWorkers", "apiBudgetUsd", "apiModel", "gatewayPort",
                                        "alertEmails", "operatorCidr", "tags", "namePrefix", "vnetCidr",
                                        "segmentRetentionDays", "location", "gatewayTlsCertificate",
                                        "gatewayPublic", "gatewayAllowedCidrs", "queueShards", "queuePack"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(
                           [float("inf"), float("nan"), 1e400, -0.0]) | st.text(max_size=20)
                       | st.lists(st.text(max_size=10), max_size=3)
                       | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2), max_size=4))
def test_any_stack_config_is_a_config_or_a_stack_config_error(change: dict[str, Any]) -> None:
    try:
        cfg = parse_stack_config({**sample(), **change})
    except StackConfigError as err:
        assert "\n" not in str(err) and "spotkit:" in str(err)
        return
    assert cfg.models and cfg.slot_count >= cfg.min_running >= 0
