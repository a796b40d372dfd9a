"""The kit's one HTTP client and its one retry policy, through httpx2's mock transport."""

from __future__ import annotations

import math
import random

import httpx2
import pytest

from runtime.errors import SpotkitError
from runtime.http import HttpClient, HttpError, retry_after_seconds
from runtime.retry import AZURE_SDK_RETRY, Backoff, GaveUp, RetryPolicy


class Script:
    """Answers from a list, one per request; records what was asked."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.seen: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Script, attempts: float = 4) -> tuple[HttpClient, list[float]]:
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    policy = RetryPolicy(attempts, Backoff(base_seconds=0.1, cap_seconds=5.0, jitter=0.0))
    return HttpClient(2.0, policy, transport=httpx2.MockTransport(script), wait=wait), waits


def test_transient_answers_are_retried_with_growing_waits() -> None:
    script = Script(httpx2.Response(503), httpx2.Response(502), httpx2.Response(200, json={"ok": True}))
    http, waits = client(script)
    assert http.get("http://x/y").json() == {"ok": True}
    assert len(script.seen) == 3 and waits == [0.1, 0.2]


def test_retry_after_lengthens_the_wait_up_to_the_cap() -> None:
    script = Script(httpx2.Response(429, headers={"Retry-After": "3"}), httpx2.Response(429, headers={
        "Retry-After": "600"}), httpx2.Response(200))
    http, waits = client(script)
    assert http.post("http://x/y", json_body={"a": 1}).status == 200
    assert waits == [3.0, 5.0]  # the server's 3 s; 600 s capped at the policy's 5 s


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_an_answer_that_will_not_heal_is_not_retried(status: int) -> None:
    script = Script(httpx2.Response(status))
    http, waits = client(script)
    with pytest.raises(HttpError) as err:
        http.get("http://x/y")
    assert err.value.status == status and err.value.kind == "status" and not err.value.transient
    assert waits == [] and len(script.seen) == 1


def test_connection_failures_are_transient_and_bounded() -> None:
    script = Script(*[httpx2.ConnectError("refused")] * 3)
    http, waits = client(script, attempts=3)
    with pytest.raises(GaveUp, match="gave up after 3 attempts") as err:
        http.get("http://x/y")
    assert isinstance(err.value.last, HttpError) and err.value.last.kind == "unreachable"
    assert len(waits) == 2


def test_a_timeout_is_its_own_kind() -> None:
    http, _ = client(Script(httpx2.ReadTimeout("slow")), attempts=1)
    with pytest.raises(HttpError, match="no answer within 2 s") as err:
        http.get("http://x/y")
    assert err.value.kind == "timeout" and err.value.transient


def test_a_label_keeps_a_secret_url_out_of_the_error() -> None:
    http, _ = client(Script(httpx2.Response(404)))
    with pytest.raises(HttpError) as err:
        http.post("https://hooks.example/T000/B000/SECRETPART", json_body={}, label="alert webhook")
    assert "SECRETPART" not in str(err.value) and "alert webhook" in str(err.value)


def test_garbage_is_a_body_error() -> None:
    http, _ = client(Script(httpx2.Response(200, content=b"<html>")))
    with pytest.raises(HttpError, match="not JSON") as err:
        http.get("http://x/y").json()
    assert err.value.kind == "body" and not err.value.transient


def test_a_stop_cuts_the_wait_short() -> None:
    policy = RetryPolicy(10, Backoff(base_seconds=1.0))
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise SpotkitError("outage", transient=True)

    with pytest.raises(GaveUp, match="interrupted"):
        policy.run(flaky, wait=lambda seconds: True)
    assert len(calls) == 1


def test_a_time_budget_bounds_an_unbounded_count() -> None:
    now = [0.0]

    def wait(seconds: float) -> bool:
        now[0] += seconds
        return False

    policy = RetryPolicy(math.inf, Backoff(base_seconds=1.0, cap_seconds=8.0, jitter=0.0), give_up_after_seconds=20)
    with pytest.raises(GaveUp, match="in 15 s"):
        policy.run(lambda: (_ for _ in ()).throw(SpotkitError("down", transient=True)), wait, lambda: now[0])


def test_jitter_spreads_a_fleet_and_never_passes_the_cap() -> None:
    backoff = Backoff(base_seconds=1.0, cap_seconds=4.0, jitter=0.2, rng=random.Random(7))
    delays = [backoff.delay(n) for n in range(1, 40)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) == len(delays)


def test_sdk_retries_are_configured_from_the_same_policy() -> None:
    policy = RetryPolicy(3, Backoff(base_seconds=0.25, cap_seconds=6.0))
    assert policy.openai_max_retries() == 2
    assert policy.azure_core_options() == {"retry_total": 2, "retry_backoff_factor": 0.25, "retry_backoff_max": 6.0}
    assert policy.azure_storage_options()["retry_total"] == 2
    assert AZURE_SDK_RETRY.azure_storage_options()["initial_backoff"] < 15  # the SDK's own default: 15 s


@pytest.mark.parametrize("raw, seconds", [("3", 3.0), ("0.5", 0.5), ("", None), ("soon", None), ("-1", None),
                                          ("nan", None), ("Wed, 21 Oct 2026 07:28:00 GMT", None)])
def test_retry_after_parsing(raw: str, seconds: float | None) -> None:
    assert retry_after_seconds(raw) == seconds
