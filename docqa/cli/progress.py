"""A live ingest progress display on stderr: files, pages (how many by OCR, how fast, how long
still) and chunks embedded."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from docqa.index.report import IngestProgress


class _Rate(ProgressColumn):
    """Pages (or chunks) a second, once there is a rate to show."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "")
        return Text(f"{speed:.1f} {unit}/s" if speed and unit else "")


class RichIngestProgress(IngestProgress):
    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._files = self._progress.add_task("files", total=None, detail="")
        self._pages = self._progress.add_task("pages", total=None, detail="", unit="pages")
        self._chunks = self._progress.add_task("embedded", total=0, detail="", unit="chunks")
        self._ocr_pages = 0

    def __enter__(self) -> RichIngestProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, files: int) -> None:
        self._progress.update(self._files, total=files)

    def planned(self, files: int, pages: int) -> None:
        self._progress.update(self._pages, total=pages)

    def file(self, source: str, pages: int) -> None:
        self._progress.update(self._files, advance=1, detail=source)

    def skipped(self) -> None:
        self._progress.update(self._files, advance=1)

    def page(self, ocr: bool = False) -> None:
        self._ocr_pages += ocr
        detail = f"{self._ocr_pages} by OCR" if self._ocr_pages else ""
        self._progress.update(self._pages, advance=1, detail=detail)

    def chunked(self, chunks: int) -> None:
        total = self._progress.tasks[self._chunks].total or 0
        self._progress.update(self._chunks, total=total + chunks)

    def embedded(self, chunks: int) -> None:
        self._progress.update(self._chunks, advance=chunks)
