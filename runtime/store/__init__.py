"""Object stores: one contract (`base.ObjectStore`), local disk and Azure Blob Storage."""

from runtime.store.base import ObjectStore
from runtime.store.factory import open_store

__all__ = ["ObjectStore", "open_store"]
