"""GPU pool: a fixed set of *node slots*. Each slot is a spot VM (``priority: Spot``,
``evictionPolicy: Deallocate``, ``billingProfile.maxPrice`` from config) with its own managed data
disk at LUN 0 that survives eviction and re-creation of the VM (``deleteOption: Detach``), the
NVIDIA driver extension, and custom data rendered from ``images/node``.

Slots of the stack's ``vmSize`` come first, then as many again of each ``fallbackSizes`` entry (their
own disks too): when Azure has no spot capacity for one size, the controller starts the next
(`spotkit.controller.loop.Controller._start`). Slots are declared here and started or deallocated by
the cost controller; Azure keeps no power
state in the VM model, so Pulumi never fights the controller over it. A deallocated slot still pays
for its data disk — that is the price of booting warm, with models and caches on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import compute

from infra.components.vm import VmSpec, make_vm

NVIDIA_PUBLISHER, NVIDIA_TYPE, NVIDIA_VERSION = "Microsoft.HpcCompute", "NvidiaGpuDriverLinux", "1.6"


@dataclass
class GpuPoolArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    name_prefix: str
    slot_count: int
    vm_size: str
    fallback_sizes: tuple[str, ...]
    spot_price_cap_per_hour: float
    data_disk_size_gb: int
    data_disk_sku: str
    subnet_id: pulumi.Input[str]
    identity_id: pulumi.Input[str]
    admin_ssh_public_key: str
    custom_data: Callable[[str], pulumi.Input[str]]  # slot VM name -> base64 custom data


def slot_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-slot-{i + 1}" for i in range(count)]


def slot_specs(prefix: str, count: int, size: str, fallback_sizes: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(VM name, VM size) of every slot, in the order the controller prefers them."""
    specs = [(name, size) for name in slot_names(prefix, count)]
    for fallback in fallback_sizes:  # Standard_NC8as_T4_v3 -> <prefix>-nc8as-1
        tag = fallback.split("_")[1].lower()
        specs += [(f"{prefix}-{tag}-{i + 1}", fallback) for i in range(count)]
    return specs


class GpuPool(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:GpuPool", name, None, opts)
        rg, loc = args.resource_group_name, args.location
        self.vms: list[compute.VirtualMachine] = []
        self.disks: list[compute.Disk] = []
        self.private_ips: list[pulumi.Output[str]] = []
        specs = slot_specs(args.name_prefix, args.slot_count, args.vm_size, args.fallback_sizes)
        for vm_name, vm_size in specs:
            disk = compute.Disk(
                f"{vm_name}-data", resource_group_name=rg, location=loc,
                tags={**args.tags, "spotkit-role": "gpu-node-data"}, disk_size_gb=args.data_disk_size_gb,
                sku=compute.DiskSkuArgs(name=args.data_disk_sku),
                creation_data=compute.CreationDataArgs(create_option=compute.DiskCreateOption.EMPTY),
                opts=pulumi.ResourceOptions(parent=self))
            made = make_vm(
                vm_name, VmSpec(
                    vm_name=vm_name, size=vm_size, subnet_id=args.subnet_id,
                    admin_ssh_public_key=args.admin_ssh_public_key, tags=args.tags, role="gpu-node",
                    custom_data=args.custom_data(vm_name), identity_id=args.identity_id, os_disk_sku="Premium_LRS",
                    data_disks=[compute.DataDiskArgs(
                        lun=0, create_option=compute.DiskCreateOptionTypes.ATTACH,
                        delete_option=compute.DiskDeleteOptionTypes.DETACH, caching=compute.CachingTypes.READ_ONLY,
                        managed_disk=compute.ManagedDiskParametersArgs(id=disk.id))]),
                rg, loc, self, spot_max_price=args.spot_price_cap_per_hour)
            vm = made.vm
            self.private_ips.append(made.private_ip)
            compute.VirtualMachineExtension(
                f"{vm_name}-nvidia", resource_group_name=rg, location=loc, vm_name=vm.name,
                auto_upgrade_minor_version=True, tags=args.tags, opts=pulumi.ResourceOptions(parent=self),
                publisher=NVIDIA_PUBLISHER, type=NVIDIA_TYPE, type_handler_version=NVIDIA_VERSION)
            self.vms.append(vm)
            self.disks.append(disk)
        self.vm_ids = [vm.id for vm in self.vms]
        self.vm_names = [name for name, _ in specs]
        self.vm_sizes = [size for _, size in specs]
        # `export SPOTKIT_SLOT_ADDRESSES=$(pulumi stack output slot_addresses)`: NAME=ADDRESS,… as
        # runtime/remote/addresses.py reads it.
        self.slot_addresses = pulumi.Output.all(*self.private_ips).apply(
            lambda ips: ",".join(f"{vm_name}={ip}" for vm_name, ip in zip(self.vm_names, ips, strict=True)))
        self.register_outputs({"vm_ids": self.vm_ids, "disk_ids": [d.id for d in self.disks]})
