"""Storage: the work queue and its poison queue, one blob container for segments, results, usage
records and heartbeats (by key prefix), lifecycle rules for segment audio. Shared-key access is
off (identities only), TLS 1.2 at least, no public blobs, and the data plane is reachable only from
the fleet's subnets and the operator's network."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

QUEUE = "work"
API_QUEUE = f"{QUEUE}-api"  # work routed to the metered API (runtime.urls.api_queue_url; a test keeps them equal)
CONTAINER = "spotkit"


@dataclass
class StorageArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    subnet_ids: list[pulumi.Input[str]]
    operator_cidr: str
    segment_retention_days: int
    account_name: str  # logical name of the storage account (`infra.names.storage_account`)
    queue_shards: int = 1  # > 1: the work queue is that many queues, QUEUE-s0…, as `?shards=N` opens them
    queue_pack: int = 1  # > 1: up to that many work items a message (`?pack=K`; no resource of its own)


def work_queue_names(shards: int) -> list[str]:
    """The fleet's queues and their poison queues, named as `runtime.queue.sharded` opens `?shards=N`
    (a test holds the two together), then the API path's pair."""
    work = [QUEUE] if shards == 1 else [f"{QUEUE}-s{i}" for i in range(shards)]
    return [n for q in work for n in (q, f"{q}-poison")] + [API_QUEUE, f"{API_QUEUE}-poison"]


def work_queue_url(account: str, shards: int, pack: int) -> str:
    options = "&".join(f"{k}={v}" for k, v in (("shards", shards), ("pack", pack)) if v > 1)
    return f"azure-queue://{account}/{QUEUE}" + (f"?{options}" if options else "")


def storage_ip_rule(cidr: str) -> str:
    """Storage IP rules take plain addresses for single hosts (no /31, /32)."""
    network = ipaddress.ip_network(cidr, strict=False)
    return str(network.network_address) if network.prefixlen >= 31 else str(network)


def _after_days(days: int) -> storage.DateAfterModificationArgs:
    return storage.DateAfterModificationArgs(days_after_modification_greater_than=days)


def _lifecycle_rule(name: str, prefix: str, action: storage.ManagementPolicyBaseBlobArgs
                    ) -> storage.ManagementPolicyRuleArgs:
    """A lifecycle rule on block blobs under one key prefix of the container."""
    return storage.ManagementPolicyRuleArgs(
        name=name, enabled=True, type="Lifecycle",
        definition=storage.ManagementPolicyDefinitionArgs(
            filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob"],
                                                       prefix_match=[f"{CONTAINER}/{prefix}"]),
            actions=storage.ManagementPolicyActionArgs(base_blob=action)))


class Storage(pulumi.ComponentResource):
    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg = args.resource_group_name
        account = storage.StorageAccount(
            args.account_name, resource_group_name=rg, location=args.location, tags=args.tags,
            kind="StorageV2", sku=storage.SkuArgs(name="Standard_LRS"),
            allow_shared_key_access=False, minimum_tls_version="TLS1_2", allow_blob_public_access=False,
            enable_https_traffic_only=True, default_to_o_auth_authentication=True,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY, bypass="AzureServices",
                virtual_network_rules=[storage.VirtualNetworkRuleArgs(virtual_network_resource_id=s)
                                       for s in args.subnet_ids],
                ip_rules=[storage.IPRuleArgs(i_p_address_or_range=storage_ip_rule(args.operator_cidr))]),
            opts=child)
        # Retained on delete: a queueShards change declares other queues, and Pulumi must not delete the
        # old ones with work still in them (drain them, then delete them by hand).
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        queues = [storage.Queue(f"{name}-{q}", account_name=account.name, resource_group_name=rg,
                                queue_name=q, opts=kept)
                  for q in work_queue_names(args.queue_shards)]
        container = storage.BlobContainer(
            f"{name}-container", account_name=account.name, resource_group_name=rg,
            container_name=CONTAINER, public_access=storage.PublicAccess.NONE, opts=child)
        storage.ManagementPolicy(
            f"{name}-lifecycle", account_name=account.name, resource_group_name=rg,
            management_policy_name="default", opts=child,
            policy=storage.ManagementPolicySchemaArgs(rules=[
                _lifecycle_rule("expire-segment-audio", "segments/", storage.ManagementPolicyBaseBlobArgs(
                    delete=_after_days(args.segment_retention_days))),
                _lifecycle_rule("cool-old-results", "results/", storage.ManagementPolicyBaseBlobArgs(
                    tier_to_cool=_after_days(30))),
            ]))
        self.account_name = account.name
        self.account_id = account.id
        self.queue_url = account.name.apply(lambda n: work_queue_url(n, args.queue_shards, args.queue_pack))
        self.store_url = account.name.apply(lambda n: f"azure-blob://{n}/{CONTAINER}")
        self.queue_names = [q.name for q in queues]
        self.container_name = container.name
        self.register_outputs({"account_name": account.name, "queue_url": self.queue_url,
                               "store_url": self.store_url})
