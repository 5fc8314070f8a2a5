"""`python -m docqa`: the docqa command line."""

from docqa.cli import app

app(prog_name="docqa")
