"""Ask a question: python main.py "QUESTION". Same as `docqa ask`; see --help."""

from docqa.cli import run_single

run_single("ask")
