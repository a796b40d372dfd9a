"""spotkit environment: spot T4 node slots with persistent disks, private networking, least-privilege
identities, queue and blob storage, alerts. Config is validated before any resource is declared."""

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Pulumi runs this folder; import as `infra.*`

from infra.config import StackConfigError, load_stack_config
from infra.program import build

try:
    config = load_stack_config()
except StackConfigError as err:
    raise pulumi.RunError(str(err)) from None  # one line, before any resource exists

for key, value in build(config).items():
    pulumi.export(key, value)
