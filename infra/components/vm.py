"""What every spotkit VM shares: Ubuntu 22.04, SSH keys only, encryption at host, a NIC without a
public IP unless asked. Kept in one place so the GPU slots and the two small hosts cannot drift."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import compute, network

UBUNTU = compute.ImageReferenceArgs(publisher="Canonical", offer="0001-com-ubuntu-server-jammy",
                                    sku="22_04-lts-gen2", version="latest")
ADMIN_USER = "azureuser"  # the sudo admin; services run as spotkit-svc (images/)


@dataclass
class VmSpec:
    vm_name: str
    size: str
    subnet_id: pulumi.Input[str]
    admin_ssh_public_key: str
    tags: dict[str, str]
    role: str  # tag spotkit-role: gpu-node | controller | jump-host (the guardrails read it)
    custom_data: pulumi.Input[str] | None = None
    identity_id: pulumi.Input[str] | None = None
    public_ip_id: pulumi.Input[str] | None = None
    backend_pool_id: pulumi.Input[str] | None = None  # a load balancer's pool the NIC joins (the gateway's)
    os_disk_sku: str = "StandardSSD_LRS"
    data_disks: list[compute.DataDiskArgs] = field(default_factory=list)


@dataclass(frozen=True)
class MadeVm:
    vm: compute.VirtualMachine
    # The NIC's private address as Azure assigned it (Dynamic allocation): how `spotkit node ssh|exec`
    # reaches a slot through the jump host (the stack's `slot_addresses` output).
    private_ip: pulumi.Output[str]


def make_vm(name: str, spec: VmSpec, resource_group_name: pulumi.Input[str], location: str,
            parent: pulumi.Resource, spot_max_price: float | None = None) -> MadeVm:
    """A VM with its NIC; with *spot_max_price* a spot VM that is deallocated on eviction."""
    tags = {**spec.tags, "spotkit-role": spec.role}
    child = pulumi.ResourceOptions(parent=parent)
    nic = network.NetworkInterface(
        f"{name}-nic", resource_group_name=resource_group_name, location=location, tags=tags, opts=child,
        ip_configurations=[network.NetworkInterfaceIPConfigurationArgs(
            name="primary", subnet=network.SubnetArgs(id=spec.subnet_id), private_ip_allocation_method="Dynamic",
            public_ip_address=network.PublicIPAddressArgs(id=spec.public_ip_id) if spec.public_ip_id else None,
            load_balancer_backend_address_pools=[network.BackendAddressPoolArgs(id=spec.backend_pool_id)]
            if spec.backend_pool_id is not None else None)])
    identity = compute.VirtualMachineIdentityArgs(
        type=compute.ResourceIdentityType.USER_ASSIGNED,
        user_assigned_identities=[spec.identity_id]) if spec.identity_id is not None else None
    vm = compute.VirtualMachine(
        name, resource_group_name=resource_group_name, location=location, tags=tags, vm_name=spec.vm_name,
        hardware_profile=compute.HardwareProfileArgs(vm_size=spec.size),
        identity=identity,
        network_profile=compute.NetworkProfileArgs(network_interfaces=[
            compute.NetworkInterfaceReferenceArgs(id=nic.id, primary=True)]),
        os_profile=compute.OSProfileArgs(
            computer_name=spec.vm_name, admin_username=ADMIN_USER, custom_data=spec.custom_data,
            linux_configuration=compute.LinuxConfigurationArgs(
                disable_password_authentication=True,
                ssh=compute.SshConfigurationArgs(public_keys=[compute.SshPublicKeyArgs(
                    path=f"/home/{ADMIN_USER}/.ssh/authorized_keys", key_data=spec.admin_ssh_public_key)]))),
        security_profile=compute.SecurityProfileArgs(encryption_at_host=True),
        storage_profile=compute.StorageProfileArgs(
            image_reference=UBUNTU,
            os_disk=compute.OSDiskArgs(create_option=compute.DiskCreateOptionTypes.FROM_IMAGE,
                                       delete_option=compute.DiskDeleteOptionTypes.DELETE,
                                       managed_disk=compute.ManagedDiskParametersArgs(
                                           storage_account_type=spec.os_disk_sku)),
            data_disks=spec.data_disks or None),
        diagnostics_profile=compute.DiagnosticsProfileArgs(
            boot_diagnostics=compute.BootDiagnosticsArgs(enabled=True)),
        priority=compute.VirtualMachinePriorityTypes.SPOT if spot_max_price is not None else None,
        eviction_policy=compute.VirtualMachineEvictionPolicyTypes.DEALLOCATE if spot_max_price is not None else None,
        billing_profile=compute.BillingProfileArgs(max_price=spot_max_price) if spot_max_price is not None else None,
        opts=child)
    private_ip = nic.ip_configurations.apply(
        lambda configs: str((configs[0].private_ip_address if configs else None) or ""))
    return MadeVm(vm, private_ip)
