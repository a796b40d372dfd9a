"""What is particular to the SQS and S3 backends (moto server mode): URLs, prefixes, pagination, and
errors classified by kind — by botocore error code, never by message text."""

from __future__ import annotations

import uuid

import pytest

from runtime.errors import ConfigError, LeaseLost, QueueError, StoreError
from runtime.queue import open_queue
from runtime.queue.sqs_queue import SqsQueue
from runtime.store import open_store
from runtime.store.s3_store import S3Store
from tests.support.azurite import free_port
from tests.support.moto_server import REGION, MotoServer


@pytest.mark.parametrize("url", ["sqs://us-east-1", "sqs:///work", "sqs://us-east-1/a/b"])
def test_a_bad_sqs_url_names_the_form(url: str) -> None:
    with pytest.raises(ConfigError, match="sqs://REGION/QUEUE"):
        open_queue(url, env={})


def test_a_bad_s3_url_names_the_form() -> None:
    with pytest.raises(ConfigError, match="s3://BUCKET"):
        open_store("s3:///prefix", env={})


def test_prefixes_keep_two_deployments_apart_in_one_bucket(moto: MotoServer) -> None:
    bucket = f"b{uuid.uuid4().hex[:10]}"
    one = open_store(f"s3://{bucket}/one", env=moto.env())
    two = open_store(f"s3://{bucket}/two/deeper", env=moto.env())
    one.ensure()
    two.ensure()  # the bucket exists already: fine
    one.put("jobs/a.json", b"1")
    two.put("jobs/a.json", b"2")
    assert (one.get("jobs/a.json"), two.get("jobs/a.json")) == (b"1", b"2")
    assert one.list("jobs/") == two.list("jobs/") == ["jobs/a.json"]


def test_listing_reads_every_page(moto: MotoServer) -> None:
    store = S3Store(f"b{uuid.uuid4().hex[:10]}", "", moto.env())
    store.page_size = 3
    store.ensure()
    keys = [f"usage/day=2026-12-03/n{i:02d}" for i in range(10)]
    for key in keys:
        store.put(key, b"x")
    store.put("other/k", b"x")
    assert store.list("usage/") == keys


def test_a_missing_queue_is_permanent_and_says_what_to_do(moto: MotoServer) -> None:
    queue = SqsQueue(REGION, f"never{uuid.uuid4().hex[:8]}", env=moto.env())
    with pytest.raises(QueueError, match="does not exist") as err:
        queue.send("x")
    assert err.value.transient is False


def test_a_missing_bucket_is_permanent(moto: MotoServer) -> None:
    store = S3Store(f"never{uuid.uuid4().hex[:8]}", "", moto.env())
    with pytest.raises(StoreError) as err:
        store.put("a", b"x")
    assert err.value.transient is False


def test_an_invalid_receipt_is_a_lost_lease(moto: MotoServer) -> None:
    from runtime.queue.base import Message

    queue = SqsQueue(REGION, f"q{uuid.uuid4().hex[:8]}", env=moto.env())
    queue.ensure()
    with pytest.raises(LeaseLost):
        queue.renew(Message("m", "", "not-a-receipt-handle", 1), 30)


def test_an_unreachable_endpoint_is_transient() -> None:
    env = {"SPOTKIT_AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": REGION}
    queue = SqsQueue(REGION, "q", env=env, _client=_fast_client(env))
    with pytest.raises(QueueError) as err:
        queue.send("x")
    assert err.value.transient is True and "cannot reach" in str(err.value)


def _fast_client(env: dict[str, str]) -> object:
    """An SQS client like production's but without retries, so the refused connection fails at once."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION).client(
        "sqs", endpoint_url=env["SPOTKIT_AWS_ENDPOINT_URL"],
        config=Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "max_attempts": 1}))
