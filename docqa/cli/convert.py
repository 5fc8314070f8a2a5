"""`docqa convert`: a GGML v3 llama model re-packed as GGUF, for llama.cpp."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docqa.cli.common import DebugOption, run
from docqa.errors import ExitCode


def convert(
    model: Annotated[
        Path, typer.Argument(help="GGML v3 llama model (.bin).", dir_okay=False, resolve_path=True)
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="GGUF file to write. Default: beside MODEL, e.g. llama-2-7b-chat.q8_0.gguf "
            "for llama-2-7b-chat.ggmlv3.q8_0.bin, where backend auto finds it.",
            dir_okay=False,
            resolve_path=True,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    debug: DebugOption = False,
) -> None:
    """Write a lossless GGUF copy of a GGML v3 llama model: the same weights, byte for byte,
    which llama.cpp reads (prompts several times faster than ctransformers)."""

    def body() -> ExitCode:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        from docqa.llm.convert import convert as convert_model
        from docqa.llm.convert import converted_path

        default = converted_path(model)
        target = output or default
        progress = Progress(
            "converting",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = progress.add_task("tensors", total=None)

        def show(copied: int, total: int) -> None:
            progress.start()  # at the first tensor: nothing is drawn before an error
            progress.update(task, completed=copied, total=total)

        try:
            done = convert_model(model, target, force, show)
        finally:
            if progress.live.is_started:
                progress.stop()
        after = (
            f"with llm.backend auto, docqa now reads it in place of {model.name}"
            if target == default
            else f"point llm.model at it, or name it {default.name} beside {model.name}"
        )
        print(
            f"wrote {target} ({done.bytes / 1e9:.2f} GB, {done.tensors} tensors) in "
            f"{done.seconds:.1f} s; {after}"
        )
        return ExitCode.OK

    run(debug, body)
