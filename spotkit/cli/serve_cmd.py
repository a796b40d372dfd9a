"""``spotkit serve`` (the OpenAI-compatible gateway) and ``spotkit keys create|list|revoke`` (its keys)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import click

from runtime.gateway.apikeys import create_key, list_keys, revoke_key, set_retention
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.params import POSITIVE
from spotkit.cli.tables import print_table


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 behind the internal load balancer).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--wait-seconds", type=POSITIVE, default=120.0, show_default=True,
              help="Longest a synchronous transcription waits for its job; longer media: the job API.")
@click.option("--max-upload-mb", type=POSITIVE, default=25.0, show_default=True,
              help="Largest upload of any key (a key's own limit may be lower).")
@click.option("--spool-dir", type=click.Path(path_type=Path), help="Where uploads stream to (default: a "
              "folder in the system's temporary directory).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), envvar="SPOTKIT_GATEWAY_TLS_CERT",
              help="Serve HTTPS with this certificate (PEM; on the controller VM, the Key Vault certificate "
              "fetch-tls writes; env SPOTKIT_GATEWAY_TLS_CERT).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), envvar="SPOTKIT_GATEWAY_TLS_KEY",
              help="The certificate's private key (PEM; may be the same file; env SPOTKIT_GATEWAY_TLS_KEY).")
@click.pass_context
@friendly_errors
def serve(ctx: click.Context, host: str, port: int, wait_seconds: float, max_upload_mb: float,
          spool_dir: Path | None, tls_cert: str | None, tls_key: str | None) -> None:
    """Answer OpenAI's audio API in front of the queue and the store: applications switch from the
    API to the fleet by changing OPENAI_BASE_URL (docs/gateway.md).

    \b
    Examples:
      spotkit keys create team-search            # prints the key once
      spotkit serve --port 8080
      OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=sk-spotkit-... python app.py
      curl -H "Authorization: Bearer $KEY" -F file=@talk.mp3 -F model=whisper-1 \\
           http://127.0.0.1:8080/v1/audio/transcriptions
    """
    import uvicorn

    from runtime.gateway.app import create_app

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = settings_from(ctx)
    access = logging.getLogger("spotkit.gateway.access")  # one JSON object a line on stderr, for the journal
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    app = create_app(settings, wait_seconds=wait_seconds, max_upload_mb=max_upload_mb, spool_dir=spool_dir)
    click.echo(f"spotkit gateway on {'https' if tls_cert else 'http'}://{host}:{port}/v1 "
               f"(queue {settings.queue}, store {settings.store})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key)


@click.group()
def keys() -> None:
    """Issue, list and revoke the gateway's API keys (one per team: usage is split by key).

    \b
    Examples:
      spotkit keys create team-search --rate-per-minute 120 --max-upload-mb 25
      spotkit keys create team-legal --media-retention-days 30
      spotkit keys list --json
      spotkit keys retention 3f9a0c1d2e4b 7
      spotkit keys revoke 3f9a0c1d2e4b
    """


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else ""


@keys.command("create")
@click.argument("name")
@click.option("--rate-per-minute", type=int, default=60, show_default=True, help="Requests a minute, per instance.")
@click.option("--max-upload-mb", type=float, default=25.0, show_default=True, help="Largest upload this key may send.")
@click.option("--media-retention-days", type=float, default=0.0, show_default=True,
              help="Delete its jobs' audio this many days after submission, keeping the transcripts "
              "(0: keep until `spotkit jobs delete`).")
@click.option("--json", "as_json", is_flag=True, help="Print the key and its record as JSON.")
@click.pass_context
@friendly_errors
def create(ctx: click.Context, name: str, rate_per_minute: int, max_upload_mb: float, media_retention_days: float,
           as_json: bool) -> None:
    """Issue a key for NAME (a team or an application); the key is printed once, only its hash is kept.

    \b
    Examples:
      spotkit keys create team-search
      KEY=$(spotkit keys create batch-jobs --rate-per-minute 600)
    """
    store = open_store(settings_from(ctx).store)
    store.ensure()
    record, text = create_key(store, name, rate_per_minute, max_upload_mb, media_retention_days=media_retention_days)
    if as_json:
        click.echo(json.dumps({"key": text, "id": record.id, "name": record.name,
                               "rate_per_minute": record.rate_per_minute, "max_upload_mb": record.max_upload_mb,
                               "media_retention_days": record.media_retention_days}))
        return
    click.echo(text)
    click.echo(f"key {record.id} for {name}: keep it now, it is not shown again", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON (never their secrets).")
@click.pass_context
@friendly_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """Show every key: id, name, limits, when created or revoked (never a secret or a hash).

    \b
    Examples:
      spotkit keys list
      spotkit keys list --json | jq '.[] | select(.revoked_at == 0) | .name'
    """
    found = list_keys(open_store(settings_from(ctx).store))
    if as_json:
        click.echo(json.dumps([{"id": k.id, "name": k.name, "rate_per_minute": k.rate_per_minute,
                                "max_upload_mb": k.max_upload_mb, "media_retention_days": k.media_retention_days,
                                "created_at": k.created_at, "revoked_at": k.revoked_at} for k in found]))
        return
    print_table("gateway keys", ("id", "name", "rate/min", "max MB", "media kept", "created", "revoked"),
                [(k.id, k.name, k.rate_per_minute, f"{k.max_upload_mb:g}", _kept(k.media_retention_days),
                  _when(k.created_at), _when(k.revoked_at)) for k in found])


def _kept(days: float) -> str:
    return f"{days:g} days" if days else "until deleted"


@keys.command("retention")
@click.argument("key_id")
@click.argument("days", type=float)
@click.pass_context
@friendly_errors
def retention(ctx: click.Context, key_id: str, days: float) -> None:
    """Set KEY_ID's media retention to DAYS (0: keep until deleted). It counts from each job's
    submission, for the jobs the key already sent too; the controller deletes the audio daily, or
    `spotkit jobs expire` now.

    \b
    Examples:
      spotkit keys retention 3f9a0c1d2e4b 30
      spotkit keys retention 3f9a0c1d2e4b 0
    """
    record = set_retention(open_store(settings_from(ctx).store), key_id, days)
    click.echo(f"key {record.id} ({record.name}): media kept {_kept(record.media_retention_days)}")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
@friendly_errors
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke KEY_ID: every gateway instance refuses it from its next request on (401).

    \b
    Examples:
      spotkit keys revoke 3f9a0c1d2e4b
    """
    record = revoke_key(open_store(settings_from(ctx).store), key_id)
    click.echo(f"key {record.id} ({record.name}) revoked at {_when(record.revoked_at)}")
