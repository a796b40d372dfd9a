"""The one place boto3 clients are made and botocore errors are judged (for ``sqs://`` and ``s3://``).

Credentials come from the default AWS chain (environment, shared config and profiles, SSO, the
instance or task role); spotkit adds none of its own. The endpoint can be overridden for tests (moto)
and S3-compatible stores: ``SPOTKIT_AWS_ENDPOINT_URL`` first, then the SDK's own ``AWS_ENDPOINT_URL``
(which boto3 reads itself as well). Every call has connect and read timeouts and the SDK's
*standard* retry mode (throttling and 5xx retried with backoff), so a call that fails here has
already been retried.

`classify` says what *kind* a botocore error is — by its error code and HTTP status, never by its
text — for the queue and store to raise `LeaseLost`, `QueueError`, `StoreError` or `NotFound`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENDPOINT_ENV = "SPOTKIT_AWS_ENDPOINT_URL"
SDK_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 30
MAX_ATTEMPTS = 5  # the SDK's standard mode: the first try and four retries with backoff

# Codes that mean "this will not heal by retrying": refused credentials, bad input, nothing there.
_PERMANENT = frozenset({
    "AccessDenied", "AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
    "AuthFailure", "InvalidParameterValue", "InvalidParameterCombination", "MissingParameter",
    "InvalidArgument", "InvalidBucketName", "NoSuchBucket", "InvalidAddress", "UnsupportedOperation",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "InvalidAttributeName",
    "AWS.SimpleQueueService.UnsupportedOperation", "InvalidMessageContents", "KmsAccessDenied",
})
# A receipt handle that no longer names a leased message: the lease is gone (deleted or expired).
LEASE_GONE = frozenset({"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidReceiptHandle",
                        "AWS.SimpleQueueService.MessageNotInflight"})
MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
CONDITION_FAILED = frozenset({"PreconditionFailed", "412"})
CONDITION_CONFLICT = frozenset({"ConditionalRequestConflict", "409"})


def endpoint_url(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return env.get(ENDPOINT_ENV) or env.get(SDK_ENDPOINT_ENV) or None


def client(service: str, region: str | None, env: Mapping[str, str] | None = None) -> Any:
    """A boto3 client for *service* with timeouts, standard retries and the endpoint override.

    With an *env* other than the process's own (tests, `spotkit` commands given one), the chain's
    environment step reads that mapping; the rest of the chain (profiles, roles) is unchanged."""
    import boto3
    from botocore.config import Config

    given = env is not None and env is not os.environ
    session: Any = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") if given and env else None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") if given and env else None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") if given and env else None,
        region_name=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")) if given and env else None)

    config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                    s3={"addressing_style": "path"} if endpoint_url(env) else None)
    return session.client(service, region_name=region or None, endpoint_url=endpoint_url(env), config=config)


@dataclass(frozen=True)
class AwsFault:
    """A botocore error reduced to what the kit decides by."""

    code: str  # the service's error code ("" for a transport or credential fault)
    status: int  # the HTTP status (0 when no response came)
    transient: bool
    summary: str  # one line for people


def classify(err: Exception) -> AwsFault:
    """The kind of a botocore/boto3 exception: by error code and status, never by message text."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        permanent = code in _PERMANENT or code in LEASE_GONE or status in (400, 401, 403, 404, 405, 412)
        throttled = status == 429 or "Throttl" in code or code in ("SlowDown", "RequestThrottled",
                                                                    "RequestLimitExceeded", "OverLimit")
        message = str(error.get("Message", "") or code).strip().splitlines()
        return AwsFault(code, status, throttled or not permanent, f"{code}: {message[0] if message else ''}")
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return AwsFault("", 0, False, "no AWS credentials found by the default chain (set AWS_ACCESS_KEY_ID/"
                        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance/task role is attached)")
    if isinstance(err, NoRegionError):
        return AwsFault("", 0, False, "no AWS region: put it in the URL (sqs://REGION/QUEUE) or set AWS_REGION")
    if isinstance(err, ConnectionError | ReadTimeoutError):
        return AwsFault("", 0, True, f"cannot reach the endpoint ({type(err).__name__})")
    if isinstance(err, BotoCoreError):
        return AwsFault("", 0, False, type(err).__name__)
    return AwsFault("", 0, True, type(err).__name__)
