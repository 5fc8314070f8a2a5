"""docqa: offline question answering over your documents, with sources and timings."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("docqa")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
