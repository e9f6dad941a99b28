"""`app predict NAME TEXT...`: predictions of a fine-tuned version."""
from __future__ import annotations

import click

from .output import emit_json, json_option, stdout_console, table


@click.command("predict")
@click.argument("name")
@click.argument("texts", nargs=-1)
@click.option("--model", help="TASK@latest (default), TASK@vN, or an artifact folder.")
@json_option
@click.pass_context
def predict(ctx: click.Context, name: str, texts: tuple[str, ...], model: str | None,
            as_json: bool) -> None:
    """Predict with task NAME's latest (or --model) fine-tuned version."""
    from ..errors import ConfigError
    from ..runner import predict as run_predict

    if not texts:
        raise ConfigError("give at least one TEXT, e.g. app predict financial-sentiment \"Profit rose.\"")
    outputs = run_predict(name, texts, model=model, strict=ctx.obj["strict"],
                          registries=ctx.obj["registries"])
    if as_json:
        emit_json([{"input": t, **o} for t, o in zip(texts, outputs)])
        return
    rows = [[t, o.get("label", ""), ", ".join(f"{k} {v:.3f}" for k, v in
                                              o.get("probabilities", {}).items())]
            for t, o in zip(texts, outputs)]
    stdout_console().print(table(None, ["input", "label", "probabilities"], rows))


COMMANDS = [predict]
