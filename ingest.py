"""Build the index from the PDFs in data/. Same as `docqa ingest`; see --help."""

from docqa.cli import run_single

run_single("ingest")
