"""Monitoring: an action group (e-mail, webhook) and an activity-log alert on Resource Health
events of the resource group's VMs.

Why Resource Health: Azure documents the `VirtualMachinePreempted` Resource Health annotation for
spot evictions; the Activity Log operation names for evictions are documented only by the
community. The alert fires on every health event of the group's VMs (evictions among them), so
on-call hears about capacity loss even when a node died too fast to post its own webhook
(docs/deploy.md, "Alerts")."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pulumi
from pulumi_azure_native import monitor

# The runbooks of the deployed version, and the eviction page: the same as the agents' alerts link
# (runtime.eviction.alerts.DEFAULT_RUNBOOKS, RUNBOOK_PAGES; infra imports nothing of the runtime, so
# tests/infra/test_program.py holds the two equal).
DEFAULT_RUNBOOKS = "https://github.com/spotkit/spotkit/blob/v{version}/docs/runbooks"
EVICTION_PAGE = "eviction.md"


def eviction_runbook(base: str) -> str:
    """The eviction runbook's URL under the stack's runbookBaseUrl, or under the deployed version's docs."""
    root = base or DEFAULT_RUNBOOKS.format(version=metadata.version("spotkit"))
    return f"{root.rstrip('/')}/{EVICTION_PAGE}"


@dataclass
class MonitoringArgs:
    resource_group_name: pulumi.Input[str]
    resource_group_id: pulumi.Input[str]
    tags: dict[str, str]
    emails: tuple[str, ...]
    webhook_url: Any | None  # a pulumi secret Output, or None
    runbook: str = ""  # the eviction runbook's URL, in the alert's description


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = monitor.ActionGroup(
            f"{name}-oncall", resource_group_name=args.resource_group_name, location="Global", tags=args.tags,
            group_short_name="spotkit", enabled=True,
            email_receivers=[monitor.MicrosoftCommonEmailReceiverArgs(name=f"email-{i}", email_address=e,
                                                       use_common_alert_schema=True)
                             for i, e in enumerate(args.emails)],
            webhook_receivers=[monitor.WebhookReceiverArgs(name="webhook", service_uri=args.webhook_url,
                                                           use_common_alert_schema=True)]
            if args.webhook_url is not None else [],
            opts=child)
        alert = monitor.ActivityLogAlert(
            f"{name}-vm-health", resource_group_name=args.resource_group_name, location="Global", tags=args.tags,
            description="A spotkit VM changed health (spot eviction: VirtualMachinePreempted)"
                        + (f". Runbook: {args.runbook}" if args.runbook else ""), enabled=True,
            scopes=[args.resource_group_id],
            condition=monitor.AlertRuleAllOfConditionArgs(all_of=[
                monitor.AlertRuleAnyOfOrLeafConditionArgs(field="category", equals="ResourceHealth"),
                monitor.AlertRuleAnyOfOrLeafConditionArgs(field="resourceType",
                                                          equals="Microsoft.Compute/virtualMachines"),
            ]),
            actions=monitor.ActionListArgs(action_groups=[monitor.ActionGroupArgs(action_group_id=group.id)]),
            opts=child)
        self.action_group_id, self.alert_id = group.id, alert.id
        self.register_outputs({"action_group_id": group.id, "alert_id": alert.id})
