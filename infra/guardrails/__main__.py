"""CrossGuard policy pack: ``pulumi up --policy-pack infra/guardrails``. Thin on purpose: the
checks live in `validators.py`, where tests import them without starting a policy server."""

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validators import VALIDATORS, GuardrailConfig  # type: ignore[import-not-found]


def _policy(name: str, description: str, validator):  # type: ignore[no-untyped-def]
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config() or {}
        cfg = GuardrailConfig(max_price_cap=float(config.get("maxPriceCap", GuardrailConfig.max_price_cap)))
        for message in validator(args.resource_type, args.props, cfg):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


PolicyPack(name="spotkit-guardrails", enforcement_level=EnforcementLevel.MANDATORY,
           policies=[_policy(name, description, fn) for name, (description, fn) in VALIDATORS.items()])
