"""A live ingest progress display on stderr: files, pages (and how many were OCR'd), chunks."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from docqa.index.ingest import IngestProgress


class RichIngestProgress(IngestProgress):
    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._files = self._progress.add_task("files", total=None, detail="")
        self._pages = self._progress.add_task("pages", total=0, detail="")
        self._chunks = self._progress.add_task("embedded", total=0, detail="chunks")
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

    def file(self, source: str, pages: int) -> None:
        self._progress.update(self._files, advance=1, detail=source)
        total = self._progress.tasks[self._pages].total or 0
        self._progress.update(self._pages, total=total + pages)

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
