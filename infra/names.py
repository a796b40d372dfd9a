"""Names of the resources whose Azure names are short and strict, decided once for the program and
for the config check that runs before any resource is declared.

Pulumi auto-names a resource by appending a random suffix to its logical name; a storage account
then allows 24 lowercase letters and digits in all, a Key Vault 24 letters, digits and dashes. A
``namePrefix`` that makes either too long would otherwise fail at ``pulumi up`` with Azure's
"AccountNameInvalid", long after the stack was configured.
"""

from __future__ import annotations

AUTONAME_SUFFIX = 8  # characters Pulumi appends to a logical name
MAX_STORAGE_ACCOUNT = 24
MAX_KEY_VAULT = 24


def storage_account(prefix: str) -> str:
    return f"{prefix.replace('-', '')}st"


def key_vault(prefix: str) -> str:
    return f"{prefix}-kv"


def too_long(prefix: str) -> str:
    """Why *prefix* cannot name this stack's resources ("" if it can)."""
    for what, name, limit in (("storage account", storage_account(prefix), MAX_STORAGE_ACCOUNT),
                              ("Key Vault", key_vault(prefix), MAX_KEY_VAULT)):
        if len(name) + AUTONAME_SUFFIX > limit:
            return (f"makes the {what} name {name!r} + Pulumi's {AUTONAME_SUFFIX}-character suffix = "
                    f"{len(name) + AUTONAME_SUFFIX} characters; Azure allows {limit}")
    return ""
