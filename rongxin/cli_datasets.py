"""``rongxin datasets``: build benchmark corpora and attack sets (mounted by :mod:`rongxin.cli`)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from datasets import smoke
from datasets.attacks.generate import generate
from datasets.corpus import build, counts
from datasets.errors import DatasetsError
from datasets.manifest import Manifest
from datasets.paths import corpus_dir
from rongxin.cli_common import console, err_console, fail

app = typer.Typer(
    help="Benchmark corpora from packaged real media, and seeded attack sets.", no_args_is_help=True
)


class Target(StrEnum):
    images = "images"
    music = "music"
    speech = "speech"
    video = "video"
    all = "all"


class AttackKind(StrEnum):
    image = "image"
    audio = "audio"
    video = "video"


class _Bars:
    """Adapts the library's ``progress(step, done, total)`` callback to rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


def _summary(man: Manifest) -> None:
    table = Table(title=escape(f"corpus {man.root}"))
    for col in ("collection/role", "files", "hours", "MB"):
        table.add_column(col, justify="left" if col == "collection/role" else "right")
    for key, row in counts(man).items():
        table.add_row(key, str(int(row["files"])), f"{row['hours']:.2f}", f"{row['bytes'] / 1e6:.1f}")
    console.print(table)


@app.command("build")
def build_cmd(
    target: Annotated[Target, typer.Argument(help="Which corpus: images, music, speech, video or all.")],
    out: Annotated[Path | None, typer.Option("--out", help="Corpus directory (default: the cache).")] = None,
    smoke_only: Annotated[bool, typer.Option("--smoke", help="Only the small smoke subset.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the assembled clips.")] = 0,
) -> None:
    """Fetch, check, deduplicate and index media; resumable, and quick when already built."""
    try:
        with _progress() as progress:
            man = build(target.value, out, smoke=smoke_only, seed=seed, progress=_Bars(progress))
    except DatasetsError as exc:
        raise fail(str(exc)) from None
    _summary(man)
    console.print(escape(f"manifest: {man.root / 'manifest.jsonl'}"))


@app.command("smoke")
def smoke_cmd() -> None:
    """Build (if needed) and validate the smoke corpus used by the tests; print its root."""
    try:
        root = smoke.ensure()
    except DatasetsError as exc:
        raise fail(str(exc)) from None
    console.print(escape(str(root)))


@app.command("validate")
def validate_cmd(
    corpus: Annotated[
        Path | None, typer.Argument(help="Corpus directory (default: the full corpus).")
    ] = None,
) -> None:
    """Check every file against the manifest (presence, size, SM3 digest) and vice versa."""
    root = corpus or corpus_dir("full")
    try:
        man = Manifest.open(root)
        man.validate()
    except DatasetsError as exc:
        raise fail(str(exc)) from None
    _summary(man)
    console.print("[green]ok[/]: every file matches the manifest")


@app.command("attack")
def attack_cmd(
    kind: Annotated[AttackKind, typer.Argument(help="image, audio or video.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for queries/ and truth.jsonl.")],
    count: Annotated[int, typer.Option(help="Number of queries.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of sources, chains and parameters.")] = 0,
    corpus: Annotated[Path | None, typer.Option(help="Corpus directory (default: the full corpus).")] = None,
    max_chain: Annotated[int, typer.Option(help="Longest chain of transforms (besides excerpts).")] = 2,
) -> None:
    """Render a seeded attack set from a corpus, with its ground truth."""
    try:
        man = Manifest.open(corpus or corpus_dir("full"))
        with _progress() as progress:
            truths = generate(
                man, kind.value, count, seed, out, max_chain=max_chain, progress=_Bars(progress)
            )
    except DatasetsError as exc:
        raise fail(str(exc)) from None
    ops: dict[str, int] = {}
    for t in truths:
        for step in t.chain:
            ops[step["op"]] = ops.get(step["op"], 0) + 1
    console.print(escape(json.dumps({"queries": len(truths), "transforms": dict(sorted(ops.items()))})))
    console.print(escape(f"truth: {out / 'truth.jsonl'}"))
