"""``spotkit models pull|publish|list``: the model cache on a node's persistent disk."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runtime import models
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.tables import print_table


@click.group("models")
def models_group() -> None:
    """Fill and inspect the model cache (SPOTKIT_MODEL_CACHE_DIR; /mnt/spotkit/models on nodes).

    \b
    Examples:
      spotkit models publish large-v3 ./faster-whisper-large-v3   # into the store's mirror
      spotkit models pull large-v3                                 # from the mirror, checksums verified
      spotkit models pull Qwen/Qwen3-8B-AWQ --from hub
      spotkit models list
    """


@models_group.command()
@click.argument("model")
@click.option("--from", "source", type=click.Choice(["mirror", "hub"]), default="mirror", show_default=True,
              help="The store's mirror (private networks) or the Hugging Face hub.")
@click.option("--revision", help="Hub revision (with --from hub).")
@click.pass_context
@friendly_errors
def pull(ctx: click.Context, model: str, source: str, revision: str | None) -> None:
    """Download MODEL into the cache once; a second pull downloads nothing.

    \b
    Examples:
      spotkit models pull large-v3
    """
    settings = settings_from(ctx)
    cache = models.ModelCache(settings.model_cache_dir)
    if source == "hub":
        report = models.pull_from_hub(model, cache, revision)
    else:
        report = models.pull_from_store(open_store(settings.store), model, cache)
    click.echo(f"{model}: {len(report.downloaded)} files downloaded, {len(report.reused)} already there "
               f"→ {report.path}")


@models_group.command()
@click.argument("model")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
@friendly_errors
def publish(ctx: click.Context, model: str, folder: Path) -> None:
    """Upload FOLDER to the store's model mirror as MODEL, with checksums.

    \b
    Examples:
      spotkit models publish large-v3 ./faster-whisper-large-v3
    """
    count = models.publish(open_store(settings_from(ctx).store), model, folder)
    click.echo(f"{model}: {count} files published")


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """Models in the local cache and whether each is complete.

    \b
    Examples:
      spotkit models list --json
    """
    cache = models.ModelCache(settings_from(ctx).model_cache_dir)
    rows = [{"model": m, "complete": cache.is_complete(m), "path": str(cache.path(m))} for m in cache.list()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    print_table(f"model cache {cache.root}", ("model", "complete", "path"),
                ([r["model"], r["complete"], r["path"]] for r in rows))
