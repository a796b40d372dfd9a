"""Azure Blob Storage (production) — the same contract as the file store.

``put_if_absent`` is a conditional upload (``If-None-Match: *``), so the service itself decides which
writer wins. Authentication as for the queue: connection string (Azurite) or DefaultAzureCredential.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContainerClient

from runtime.azure_env import credential
from runtime.errors import NotFound, StoreError
from runtime.retry import AZURE_SDK_RETRY
from runtime.store.base import ObjectStore, check_key, check_prefix

_TIMEOUT_S = 60


class AzureBlobStore(ObjectStore):
    def __init__(self, account: str, container: str, connection_string: str | None = None) -> None:
        self.account = account
        self.container = container
        self.url = f"azure-blob://{account}/{container}"
        kwargs: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 60,
                                  **AZURE_SDK_RETRY.azure_storage_options()}
        if connection_string:
            self._client = ContainerClient.from_connection_string(connection_string, container, **kwargs)
        else:
            self._client = ContainerClient(
                f"https://{account}.blob.core.windows.net", container, credential=credential(), **kwargs)

    def _fail(self, what: str, err: AzureError) -> StoreError:
        # A refused credential or a missing container will not heal by retrying; the rest may.
        status = getattr(err, "status_code", None)
        first = (str(getattr(err, "message", None) or err).strip().splitlines() or [type(err).__name__])[0]
        return StoreError(f"{what} on {self.url}: {first}", transient=not isinstance(err, ClientAuthenticationError)
                          and status not in (400, 401, 403, 404, 409))

    def ensure(self) -> None:
        try:
            self._client.create_container(timeout=_TIMEOUT_S)
        except ResourceExistsError:
            pass
        except AzureError as err:
            raise self._fail("create container", err) from None

    def close(self) -> None:
        self._client.close()

    def put(self, key: str, data: bytes) -> None:
        try:
            self._client.upload_blob(check_key(key), data, overwrite=True, timeout=_TIMEOUT_S)
        except AzureError as err:
            raise self._fail(f"write {key}", err) from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            # overwrite=False sends If-None-Match: *, so the service picks the single winner.
            self._client.upload_blob(check_key(key), data, overwrite=False, timeout=_TIMEOUT_S)
            return True
        except (ResourceExistsError, ResourceModifiedError):
            return False
        except AzureError as err:
            raise self._fail(f"write {key}", err) from None

    def get(self, key: str) -> bytes:
        try:
            return bytes(self._client.download_blob(check_key(key), timeout=_TIMEOUT_S).readall())
        except ResourceNotFoundError:
            raise NotFound(f"{key}: not in store {self.url}") from None
        except AzureError as err:
            raise self._fail(f"read {key}", err) from None

    def exists(self, key: str) -> bool:
        try:
            return bool(self._client.get_blob_client(check_key(key)).exists(timeout=_TIMEOUT_S))
        except AzureError as err:
            raise self._fail(f"check {key}", err) from None

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        try:
            return sorted(b.name for b in self._client.list_blobs(name_starts_with=prefix or None,
                                                                   timeout=_TIMEOUT_S))
        except AzureError as err:
            raise self._fail(f"list {prefix!r}", err) from None

    def delete(self, key: str) -> None:
        try:
            self._client.delete_blob(check_key(key), timeout=_TIMEOUT_S)
        except ResourceNotFoundError:
            pass
        except AzureError as err:
            raise self._fail(f"delete {key}", err) from None
