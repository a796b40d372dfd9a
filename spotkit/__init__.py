"""spotkit: AI inference on Azure spot T4 GPUs without losing work to evictions.

This package holds only the operator CLI; the logic lives in `runtime`, `policies` and `infra`.
"""

from runtime import __version__

__all__ = ["__version__"]
