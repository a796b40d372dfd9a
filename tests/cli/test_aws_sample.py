"""The shipped sample through submit → agent --until-idle → fetch on SQS + S3 (moto server mode) gives
the transcript the embedded default gives: the runtime has no lock-in to its default backends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE
from tests.support.moto_server import REGION, MotoServer


def run_sample(home: Path, env: dict[str, str]) -> dict[str, str]:
    sub = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", env=env)
    assert sub.returncode == 0, sub.stderr
    job = sub.stdout.strip()
    agent = spotkit(home, "agent", "--until-idle", env={**env, "SPOTKIT_IDLE_SECONDS": "0.5"})
    assert agent.returncode == 0, agent.stderr
    status = json.loads(spotkit(home, "status", job, "--json", env=env).stdout)
    assert status["complete"] and status["done"] == status["segments"] > 0
    return {fmt: spotkit(home, "fetch", job, "--format", fmt, env=env).stdout for fmt in ("txt", "srt")}


def test_sample_on_sqs_and_s3_matches_the_embedded_default(moto: MotoServer, tmp_path: Path) -> None:
    embedded = run_sample(tmp_path / "embedded", {})
    name = f"q{uuid.uuid4().hex[:10]}"
    aws = {**moto.env(), "SPOTKIT_QUEUE": f"sqs://{REGION}/{name}",
           "SPOTKIT_STORE": f"s3://b{uuid.uuid4().hex[:10]}/spotkit"}
    on_aws = run_sample(tmp_path / "aws", aws)
    assert on_aws == embedded
    assert "goodbye" in on_aws["txt"].lower()
