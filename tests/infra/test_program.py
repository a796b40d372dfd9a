"""The Pulumi program under mocks: the properties that matter, asserted on what it declares."""

from __future__ import annotations

import base64
import copy
import functools
import re
import runpy
from dataclasses import replace
from typing import Any

import pulumi
import pytest

from infra.config import parse_stack_config
from infra.guardrails.validators import check_all
from tests.infra.test_config import REPO, sample
from tests.support.pulumi_mocks import SUBSCRIPTION, CapturingMocks, client_id, run_program

SECRET_VALUES = {"alertWebhook": "https://hooks.example.invalid/T000/B000/zzzSECRETzzz",
                 "hfToken": "hf_zzzSECRETTOKENzzz"}


@pytest.fixture(scope="module")
def env() -> tuple[CapturingMocks, dict[str, Any]]:
    secrets = {k: pulumi.Output.secret(v) for k, v in SECRET_VALUES.items()}
    return run_program(parse_stack_config(sample(), secrets))


def vms(mocks: CapturingMocks, role: str) -> list[dict[str, Any]]:
    """The VMs of one role by name: Pulumi registers resources as their inputs resolve, in no set order."""
    return sorted((r.props for r in mocks.of_type("compute:VirtualMachine") if r.props["tags"]["spotkit-role"] == role),
                  key=lambda props: str(props["vmName"]))


def test_spot_slots_deallocate_at_the_configured_price(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    slots = vms(mocks, "gpu-node")
    # vmSize's slots, then as many of each fallback size (the sample stack falls back to NC8as).
    assert [(s["vmName"], s["hardwareProfile"]["vmSize"]) for s in slots] == [
        ("spotkit-dev-nc8as-1", "Standard_NC8as_T4_v3"), ("spotkit-dev-nc8as-2", "Standard_NC8as_T4_v3"),
        ("spotkit-dev-slot-1", "Standard_NC4as_T4_v3"), ("spotkit-dev-slot-2", "Standard_NC4as_T4_v3")]
    [host] = vms(mocks, "controller")
    host_text = base64.b64decode(host["osProfile"]["customData"]).decode()
    assert ("SPOTKIT_SLOT_VMS=spotkit-dev-slot-1:Standard_NC4as_T4_v3,spotkit-dev-slot-2:Standard_NC4as_T4_v3,"
            "spotkit-dev-nc8as-1:Standard_NC8as_T4_v3,spotkit-dev-nc8as-2:Standard_NC8as_T4_v3") in host_text
    for slot in slots:
        assert slot["priority"] == "Spot" and slot["evictionPolicy"] == "Deallocate"
        assert slot["billingProfile"]["maxPrice"] == 0.15
        assert slot["securityProfile"]["encryptionAtHost"] is True
        assert slot["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    for host in vms(mocks, "controller") + vms(mocks, "jump-host"):
        assert "priority" not in host  # small hosts are regular VMs


def test_one_persistent_data_disk_per_slot(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    disks = mocks.of_type("compute:Disk")
    assert len(disks) == 4  # every slot, fallback sizes included, boots warm from its own disk
    disk_ids = {f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/{d.type}/{d.name}" for d in disks}
    attached = set()
    for slot in vms(mocks, "gpu-node"):
        [data] = slot["storageProfile"]["dataDisks"]
        assert (data["lun"], data["createOption"], data["deleteOption"]) == (0, "Attach", "Detach")
        attached.add(data["managedDisk"]["id"])
    assert attached == disk_ids
    assert all(d.props["diskSizeGB"] == 256 and d.props["sku"]["name"] == "Premium_LRS" for d in disks)


def test_no_public_ip_on_gpu_nodes(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    gpu_nics = [n for n in mocks.of_type("network:NetworkInterface") if n.props["tags"]["spotkit-role"] == "gpu-node"]
    assert len(gpu_nics) == 4
    for nic in gpu_nics:
        assert all("publicIPAddress" not in ip for ip in nic.props["ipConfigurations"])
    public = sorted(p.name for p in mocks.of_type("network:PublicIPAddress"))
    assert public == ["spotkit-dev-hosts-jump-ip", "spotkit-dev-net-nat-ip"]  # NAT egress and the jump host


def test_no_inbound_rule_open_to_the_internet(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    rules = [rule for nsg in mocks.of_type("network:NetworkSecurityGroup") for rule in nsg.props["securityRules"]]
    allowed = [r for r in rules if r["access"] == "Allow" and r["direction"] == "Inbound"]
    assert {r["sourceAddressPrefix"] for r in allowed} == {"203.0.113.0/28", "10.40.2.0/24"}  # operator, jump subnet
    assert all(r["destinationPortRange"] == "22" for r in allowed)
    assert sum(r["access"] == "Deny" and r["sourceAddressPrefix"] == "Internet" for r in rules) == 3
    subnets = {s.name: s.props for s in mocks.of_type("network:Subnet")}
    assert all(s["defaultOutboundAccess"] is False for s in subnets.values())
    assert "natGateway" in subnets["spotkit-dev-net-gpu"] and "natGateway" not in subnets["spotkit-dev-net-jump"]


def test_storage_is_identity_only_and_private(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, outputs = env
    [account] = mocks.of_type("storage:StorageAccount")
    props = account.props
    assert props["allowSharedKeyAccess"] is False and props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["networkRuleSet"]["defaultAction"] == "Deny"
    assert sorted(q.props["queueName"] for q in mocks.of_type("storage:Queue")) == [
        "work", "work-api", "work-api-poison", "work-poison"]
    from runtime.urls import api_queue_url

    assert api_queue_url("azure-queue://acct/work") == "azure-queue://acct/work-api"  # the name the runtime uses
    [container] = mocks.of_type("storage:BlobContainer")
    assert container.props["publicAccess"] == "None"
    [policy] = mocks.of_type("storage:ManagementPolicy")
    [expire, _] = policy.props["policy"]["rules"]
    assert expire["definition"]["filters"]["prefixMatch"] == ["spotkit/segments/"]
    assert expire["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 14
    assert outputs["queue_url"].startswith("azure-queue://") and outputs["queue_url"].endswith("/work")
    assert outputs["store_url"].startswith("azure-blob://") and outputs["store_url"].endswith("/spotkit")


def test_role_assignments_no_wider_than_the_resource_group(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    assignments = mocks.of_type("authorization:RoleAssignment")
    assert len(assignments) == 8
    rg_scope = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/azure-native:resources:ResourceGroup/"
    for assignment in assignments:
        scope = assignment.props["scope"]
        assert scope.startswith(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/"), scope  # never the subscription
        assert assignment.props["principalType"] == "ServicePrincipal"
    vm_contributor = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
    [only] = [a for a in assignments if a.props["roleDefinitionId"].endswith(vm_contributor)]
    assert only.props["principalId"] == "principal-spotkit-dev-id-controller"
    assert only.props["scope"].startswith(rg_scope)
    node_scopes = {a.props["scope"].rsplit("/", 1)[1] for a in assignments
                   if a.props["principalId"] == "principal-spotkit-dev-id-nodes"}
    assert node_scopes == {"spotkitdevst", "spotkit-dev-kv"}  # the account and the vault


def test_every_host_that_fetches_secrets_may_read_them(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    """The controller's cloud-init runs fetch-secrets (alert webhook, API keys) and the gateway's TLS
    certificate with its own identity: without Key Vault Secrets User on the vault it reads nothing."""
    mocks, _ = env
    secrets_user = "4633458b-17de-408a-b874-0445c86b69e6"
    readers = {a.props["principalId"] for a in mocks.of_type("authorization:RoleAssignment")
               if a.props["roleDefinitionId"].endswith(secrets_user) and a.props["scope"].endswith("/spotkit-dev-kv")}
    assert readers == {"principal-spotkit-dev-id-nodes", "principal-spotkit-dev-id-controller"}


def test_alert_wired_to_the_action_group(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, outputs = env
    [group] = mocks.of_type("monitor:ActionGroup")
    [alert] = mocks.of_type("monitor:ActivityLogAlert")
    group_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/{group.type}/{group.name}"
    assert alert.props["actions"]["actionGroups"] == [{"actionGroupId": group_id}]
    conditions = {c["field"]: c["equals"] for c in alert.props["condition"]["allOf"]}
    assert conditions == {"category": "ResourceHealth", "resourceType": "Microsoft.Compute/virtualMachines"}
    assert [r["emailAddress"] for r in group.props["emailReceivers"]] == ["oncall@example.com"]
    webhooks = group.props["webhookReceivers"]
    assert webhooks[pulumi.runtime.rpc._special_sig_key] == pulumi.runtime.rpc._special_secret_sig  # kept secret
    assert [w["name"] for w in webhooks["value"]] == ["webhook"]
    assert outputs["action_group_id"] == group_id


def test_secrets_go_to_key_vault_never_to_custom_data(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    assert sorted(s.props["secretName"] for s in mocks.of_type("keyvault:Secret")) == ["alert-webhook", "hf-token"]
    [vault] = mocks.of_type("keyvault:Vault")
    assert vault.props["properties"]["enableRbacAuthorization"] is True
    for vm in mocks.of_type("compute:VirtualMachine"):
        data = vm.props["osProfile"].get("customData")
        if data is None:
            continue
        text = base64.b64decode(data).decode()
        assert text.startswith("#cloud-config") and len(base64.b64decode(data)) < 64 * 1024
        for secret in SECRET_VALUES.values():
            assert secret not in text
    slot = next(v for v in vms(mocks, "gpu-node") if v["vmName"] == "spotkit-dev-slot-1")
    node_text = base64.b64decode(slot["osProfile"]["customData"]).decode()
    assert "spotkit-dev-slot-1" in node_text and client_id("spotkit-dev-id-nodes") in node_text


def test_outputs_name_each_slots_address_and_the_jump_host(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    """What `spotkit node ssh|exec` read from the stack, read back the way they read it."""
    from runtime.remote.addresses import parse_addresses, parse_jump_host

    _, outputs = env
    addresses = parse_addresses(outputs["slot_addresses"])
    assert list(addresses) == outputs["slot_vm_names"]  # every slot, fallback sizes included, in order
    assert all(a.host.startswith("10.0.") and a.port == 22 for a in addresses.values())
    assert str(parse_jump_host(outputs["jump_host"], "nobody")) == "azureuser@198.51.100.10:22"


def test_outputs(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    _, outputs = env
    slots = dict(entry.split(":") for entry in outputs["slot_vms"].split(","))  # what --slots takes
    assert list(slots) == outputs["slot_vm_names"] and all(size.startswith("Standard_NC") for size in slots.values())
    assert set(outputs) >= {"queue_url", "store_url", "slot_vm_ids", "resource_group", "node_identity_id",
                            "controller_identity_id", "alert_id", "action_group_id"}
    assert len(outputs["slot_vm_ids"]) == 4


def test_shipped_program_passes_every_guardrail(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env
    report = check_all(mocks.triples())
    assert report.findings == []


def _variant(mocks: CapturingMocks, suffix: str, match: str, change: Any) -> list[tuple[str, str, dict[str, Any]]]:
    triples = copy.deepcopy(mocks.triples())
    targets = [t for t in triples if t[0].endswith(suffix) and match in t[1]]
    assert targets
    for _, _, props in targets:
        change(props)
    return triples


@pytest.mark.parametrize("suffix, match, change, policy, words", [
    ("network:NetworkInterface", "slot-1", lambda p: p["ipConfigurations"][0].update(publicIPAddress={"id": "pip"}),
     "no-public-ip-on-gpu-nodes", "public IP"),
    ("network:NetworkSecurityGroup", "gpu-nsg", lambda p: p["securityRules"].append(
        {"name": "open-ssh", "direction": "Inbound", "access": "Allow", "sourceAddressPrefix": "*",
         "destinationPortRange": "22"}), "no-inbound-from-internet", "'open-ssh' allows inbound"),
    ("storage:StorageAccount", "", lambda p: p.update(allowSharedKeyAccess=True), "storage-locked-down",
     "shared-key"),
    ("compute:VirtualMachine", "slot-2", lambda p: p.pop("priority"), "gpu-vms-are-spot", "Spot"),
    ("compute:VirtualMachine", "slot-1", lambda p: p["billingProfile"].update(maxPrice=2.5), "spot-price-capped",
     "outside"),
    ("compute:VirtualMachine", "slot-1", lambda p: p["storageProfile"]["dataDisks"][0].update(deleteOption="Delete"),
     "data-disks-persistent", "Detach"),
    ("compute:VirtualMachine", "controller", lambda p: p["tags"].pop("cost-center"), "required-tags", "cost-center"),
    ("compute:VirtualMachine", "jump", lambda p: p.pop("securityProfile"), "encryption-at-host", "encryption"),
])
def test_insecure_variants_fail_with_a_clear_message(env: tuple[CapturingMocks, dict[str, Any]], suffix: str,
                                                      match: str, change: Any, policy: str, words: str) -> None:
    mocks, _ = env
    report = check_all(_variant(mocks, suffix, match, change))
    assert {f.policy for f in report.findings} == {policy}
    assert all(words in f.message for f in report.findings)


def test_regular_gpu_vm_allowed_only_when_tagged(env: tuple[CapturingMocks, dict[str, Any]]) -> None:
    mocks, _ = env

    def regular_on_purpose(props: dict[str, Any]) -> None:
        props.pop("priority")
        props["tags"]["spotkit-allow-regular"] = "true"

    assert check_all(_variant(mocks, "compute:VirtualMachine", "slot-1", regular_on_purpose)).findings == []


def test_bad_config_fails_before_any_resource() -> None:
    mocks = CapturingMocks()
    pulumi.runtime.set_mocks(mocks, project="spotkit", stack="dev", preview=False)
    config = {f"spotkit:{k}": v if isinstance(v, str) else __import__("json").dumps(v) for k, v in sample().items()}
    config["spotkit:vmSize"] = "Standard_D2s_v5"
    pulumi.runtime.set_all_config(config)
    try:
        with pytest.raises(pulumi.RunError, match=r"spotkit:vmSize has unknown VM size 'Standard_D2s_v5'"):
            runpy.run_path(str(REPO / "infra" / "__main__.py"), run_name="__main__")
    finally:
        pulumi.runtime.set_all_config({})
    assert mocks.resources == []


def test_plain_text_secret_is_refused() -> None:
    pulumi.runtime.set_mocks(CapturingMocks(), project="spotkit", stack="dev", preview=False)
    config = {f"spotkit:{k}": v if isinstance(v, str) else __import__("json").dumps(v) for k, v in sample().items()}
    config["spotkit:hfToken"] = "hf_plaintext"
    pulumi.runtime.set_all_config(config)
    try:
        with pytest.raises(pulumi.RunError, match="spotkit:hfToken must be a secret"):
            runpy.run_path(str(REPO / "infra" / "__main__.py"), run_name="__main__")
    finally:
        pulumi.runtime.set_all_config({})


def test_slot_count_scales_by_config() -> None:
    mocks, outputs = run_program(replace(parse_stack_config(sample()), slot_count=5))
    # five of vmSize and five of the fallback size
    assert len(vms(mocks, "gpu-node")) == 10 == len(outputs["slot_vm_ids"]) == len(mocks.of_type("compute:Disk"))


AOAI_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/ai/providers/Microsoft.CognitiveServices/"
           "accounts/acme-openai")


def test_azure_openai_gets_the_inference_role_and_no_key() -> None:
    """With Azure OpenAI as the metered API, both identities may call its deployments (the narrowest role,
    scoped to that one resource) and the nodes are told where it is — and nothing else: no key."""
    cfg = parse_stack_config({**sample(), "translatorProvider": "openai", "translatorModel": "gpt-4o-mini",
                              "azureOpenAiResourceId": AOAI_ID, "azureOpenAiEndpoint": "https://acme-openai.openai.azure.com",
                              "apiBudgetUsd": 300, "apiModel": "whisper"})
    mocks, _ = run_program(cfg)
    openai_user = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
    grants = [a.props for a in mocks.of_type("authorization:RoleAssignment")
              if a.props["roleDefinitionId"].endswith(openai_user)]
    assert sorted(g["principalId"] for g in grants) == ["principal-spotkit-dev-id-controller",
                                                        "principal-spotkit-dev-id-nodes"]
    assert all(g["scope"] == AOAI_ID for g in grants)
    node_text = base64.b64decode(vms(mocks, "gpu-node")[-1]["osProfile"]["customData"]).decode()
    for line in ("SPOTKIT_TRANSLATOR=openai", "SPOTKIT_TRANSLATOR_MODEL=gpt-4o-mini",
                 "SPOTKIT_METERED_API=azure-openai",
                 "AZURE_OPENAI_ENDPOINT=https://acme-openai.openai.azure.com", "OPENAI_API_VERSION=2024-10-21"):
        assert line in node_text
    assert "API_KEY" not in node_text and "openai-api-key" not in node_text
    [host] = vms(mocks, "controller")
    host_text = base64.b64decode(host["osProfile"]["customData"]).decode()
    for line in ("SPOTKIT_API_WORKERS=2", "SPOTKIT_API_BUDGET_USD=300", "SPOTKIT_API_MODEL=whisper",
                 "SPOTKIT_METERED_API=azure-openai", "SPOTKIT_VM_SIZE=Standard_NC4as_T4_v3", "SPOTKIT_REGION=eastus"):
        assert line in host_text, line


def test_the_translator_reaches_the_nodes() -> None:
    """translatorProvider was validated and then read by nothing: the nodes now run what it names."""
    mocks, _ = run_program(parse_stack_config(sample()))
    node_text = base64.b64decode(vms(mocks, "gpu-node")[-1]["osProfile"]["customData"]).decode()
    assert "SPOTKIT_TRANSLATOR=vllm" in node_text and "SPOTKIT_TRANSLATOR_MODEL=Qwen/Qwen3-8B-AWQ" in node_text
    assert "SPOTKIT_METERED_API" not in node_text


def declared(cfg: Any) -> dict[tuple[str, str], str]:
    """Every declared resource's properties, custom data decoded, as comparable text."""
    import json

    mocks, _ = run_program(cfg)
    out = {}
    for r in mocks.resources:
        props = copy.deepcopy(r.props)
        data = props.get("osProfile", {}).get("customData")
        if data:
            props["osProfile"]["customData"] = base64.b64decode(data).decode()
        out[(r.type, r.name)] = json.dumps(props, sort_keys=True, default=str)
    return out


# Each stack key with another valid value; secrets are given as secrets.
OTHER_VALUES: dict[str, Any] = {
    "location": "westeurope", "namePrefix": "spotkit-alt", "vmSize": "Standard_NC8as_T4_v3",
    "fallbackSizes": ["Standard_NC16as_T4_v3"], "slotCount": 3, "minRunning": 1, "maxPricePerHour": 0.2,
    "dataDiskSizeGb": 512, "dataDiskSku": "StandardSSD_LRS", "models": ["large-v3", "medium"],
    "translatorProvider": "none", "translatorModel": "Qwen/Qwen3-8B", "alertEmails": ["other@example.com"],
    "adminSshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyForTheTestOnly00000000000000000 x",
    "operatorCidr": "198.51.100.0/28", "spotkitPipSpec": "spotkit[gpu]==1.2.3", "segmentRetentionDays": 30,
    "vnetCidr": "10.50.0.0/16", "tags": {"environment": "prod", "cost-center": "x"},
    "azureOpenAiApiVersion": "2025-01-01-preview", "apiWorkers": 1, "apiBudgetUsd": 250, "apiModel": "whisper",
    "runbookBaseUrl": "https://wiki.example.com/spotkit/runbooks", "gatewayPort": 8443,
    "gatewayTlsCertificate": "gateway-tls", "gatewayPublic": True, "gatewayAllowedCidrs": ["198.51.100.0/24"],
    "queueShards": 4, "queuePack": 8,
}
# Keys that mean something only beside others: compared against a stack that has those others already.
BESIDE: dict[str, dict[str, Any]] = {
    "gatewayTlsCertificate": {"gatewayPort": 8443},
    "gatewayPublic": {"gatewayPort": 8443, "gatewayTlsCertificate": "gateway-tls"},
    "gatewayAllowedCidrs": {"gatewayPort": 8443, "gatewayTlsCertificate": "gateway-tls", "gatewayPublic": True,
                            "gatewayAllowedCidrs": ["203.0.113.0/24"]},
}
# What a key needs beside it to be valid at all (a public gateway names who may call it).
WITH: dict[str, dict[str, Any]] = {"gatewayPublic": {"gatewayAllowedCidrs": ["203.0.113.0/24"]}}
AOAI = {"azureOpenAiResourceId": AOAI_ID, "azureOpenAiEndpoint": "https://acme-openai.openai.azure.com"}


@functools.cache
def _base() -> dict[tuple[str, str], str]:
    """What the sample stack (with Azure OpenAI) declares: computed once per test process."""
    return declared(parse_stack_config({**sample(), **AOAI}))


def test_the_keys_changed_are_every_key_the_stack_reads() -> None:
    import inspect

    from infra.config import load_stack_config

    read = set(re.findall(r'"([a-zA-Z]+)"', inspect.getsource(load_stack_config).split("raw: dict")[0]))
    assert set(OTHER_VALUES) | set(AOAI) == read, "every key load_stack_config reads has a test value here"
    aoai_off = declared(parse_stack_config({k: v for k, v in sample().items()}))
    assert aoai_off != _base()  # the Azure OpenAI keys act (role assignments, nodes' environment)


# One test a key (they spread over the workers): a program run under mocks takes seconds.
@pytest.mark.parametrize("key", sorted(OTHER_VALUES))
def test_every_stack_key_acts(key: str) -> None:
    """No dead ends: changing any key changes what the stack declares (a resource, a property, a line of
    a node's or the controller's boot config). A key that changes nothing is validated and then ignored."""
    base = declared(parse_stack_config({**sample(), **AOAI, **BESIDE[key]})) if key in BESIDE else _base()
    changed = declared(parse_stack_config({**sample(), **AOAI, **BESIDE.get(key, {}), key: OTHER_VALUES[key],
                                           **WITH.get(key, {})}))
    assert changed != base, f"the stack key {key} changes nothing that is declared"


def test_every_secret_key_acts() -> None:
    from infra.config import SECRET_KEYS

    for key in SECRET_KEYS:
        secret = {key: pulumi.Output.secret("value-for-the-test")}
        assert declared(parse_stack_config({**sample(), **AOAI}, secret)) != _base(), key


def test_the_stack_links_the_same_runbook_the_agents_do() -> None:
    from infra.components.monitoring import eviction_runbook
    from runtime.eviction.alerts import runbook_url

    assert eviction_runbook("") == runbook_url("", "eviction")
    assert eviction_runbook("https://wiki.example.com/rb/") == runbook_url("https://wiki.example.com/rb", "eviction")


def test_the_runbook_base_reaches_every_alert() -> None:
    """runbookBaseUrl: the nodes' and the controller's alerts link under it, and so does the Azure
    Monitor alert's description; without it, the deployed version's docs."""
    base = "https://wiki.example.com/spotkit/runbooks"
    out = declared(parse_stack_config({**sample(), "runbookBaseUrl": base}))
    [alert] = [props for (kind, _), props in out.items() if kind.endswith("ActivityLogAlert")]
    assert f"Runbook: {base}/eviction.md" in alert
    boots = [props for props in out.values() if "SPOTKIT_QUEUE" in props]
    assert len(boots) >= 2 and all(f"SPOTKIT_RUNBOOK_BASE_URL={base}" in props for props in boots)
    default = declared(parse_stack_config(sample()))
    [alert] = [props for (kind, _), props in default.items() if kind.endswith("ActivityLogAlert")]
    assert "/docs/runbooks/eviction.md" in alert
    assert not any("SPOTKIT_RUNBOOK_BASE_URL" in props for props in default.values())


def test_a_sharded_packed_queue_is_the_queues_the_runtime_opens() -> None:
    """queueShards/queuePack: the stack declares exactly the queues the nodes' URL opens (and no unsharded
    `work` nobody reads), and the nodes and the controller get that URL."""
    from runtime.queue import open_queue
    from runtime.queue.packed import PackedQueue
    from runtime.queue.sharded import ShardedQueue

    mocks, outputs = run_program(parse_stack_config({**sample(), "queueShards": 4, "queuePack": 8}))
    declared_queues = sorted(q.props["queueName"] for q in mocks.of_type("storage:Queue"))
    url = outputs["queue_url"]
    assert url.endswith("/work?shards=4&pack=8")
    connection = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/a;"
    opened = open_queue(url, env={"AZURE_STORAGE_CONNECTION_STRING": connection})
    assert isinstance(opened, PackedQueue) and isinstance(opened.inner, ShardedQueue)
    names = [n for s in opened.inner.shards for n in (s.name, s.poison_queue().name)]
    assert declared_queues == sorted([*names, "work-api", "work-api-poison"])
    for vm in vms(mocks, "gpu-node") + vms(mocks, "controller"):
        assert f"SPOTKIT_QUEUE={url}\n" in base64.b64decode(vm["osProfile"]["customData"]).decode()
