"""Spreadsheets: Excel (.xlsx, with openpyxl, read-only, cached values rather than formulas)
and CSV (the csv module, its delimiter sniffed). Each sheet is cut into regions at empty rows;
a region's first row is its header, and each further row is read with the headers ("Vendor:
Acme, Limit: 5000."), located by sheet and rows."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Sequence

from docqa.config import LoadingSettings
from docqa.index.formats.ooxml import check_package
from docqa.index.formats.plaintext import decode_text
from docqa.index.formats.units import Units, numbered, table_lines
from docqa.index.loading import LimitReached, Page

SNIFFED = 64 * 1024  # characters of a CSV file its dialect is guessed from


def read_xlsx(source: str, data: bytes, loading: LoadingSettings) -> Units:
    check_package(data, loading, "xl/workbook.xml", ".xlsx")
    from openpyxl import load_workbook

    units: list[Page] = []
    rows_read = 0
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    for sheet in workbook.worksheets:
        rows = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            rows_read += 1
            if rows_read > loading.max_rows:
                raise LimitReached(f"more than {loading.max_rows} rows", "max_rows")
            rows.append((number, [_cell(value) for value in values]))
        units += regions(source, rows, sheet.title, len(units) + 1)
    title = workbook.properties.title
    return Units("openpyxl", units, {"Title": title} if title else {}, title or None)


def read_csv(source: str, data: bytes, loading: LoadingSettings) -> Units:
    text = decode_text(data)
    try:
        dialect: type[csv.Dialect] | str = csv.Sniffer().sniff(text[:SNIFFED], ",;\t|")
    except csv.Error:  # one column, or too little to tell
        dialect = "excel"
    rows = []
    for number, values in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
        if number > loading.max_rows:
            raise LimitReached(f"more than {loading.max_rows} rows", "max_rows")
        rows.append((number, values))
    return Units("csv", regions(source, rows, "", 1))


def regions(
    source: str, rows: Iterable[tuple[int, Sequence[str]]], where: str, first: int
) -> list[Page]:
    """A sheet's rows as regions (runs of rows that hold something), numbered from `first`:
    each region's first row is its header, the others are read with it."""
    units: list[Page] = []
    region: list[tuple[int, Sequence[str]]] = []
    for number, values in [*rows, (0, [])]:
        if any(value.strip() for value in values):
            region.append((number, values))
            continue
        if region:
            numbers = [number for number, _ in region]
            lines = zip(numbers, table_lines([values for _, values in region]), strict=True)
            unit = numbered(source, first + len(units), lines, where, "rows")
            if unit:
                units.append(unit)
            region = []
    return units


def _cell(value: object) -> str:
    """A cell's value as a person reads it: 1200 rather than 1200.0, a date without midnight."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    return str(value)
