"""Errors a person can act on, and the exit codes the command line maps them to."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `docqa` commands (documented in the README)."""

    OK = 0
    FAILURE = 1  # unexpected: a bug; rerun with --debug and report the traceback
    USAGE = 2  # bad arguments or an input the command cannot take
    PARTIAL = 3  # ingest built the index, but some files were skipped
    NO_INPUT = 4  # nothing to ingest
    INDEX = 5  # index missing, damaged or built with another embedding model
    MODEL = 6  # model missing, unreadable or unsupported
    CONFIG = 7  # invalid config.yml or DOCQA_* value
    BUSY = 8  # another ingest is writing the same index
    WRITE = 9  # the index could not be written (disk full, read-only); the old one is intact
    INTERRUPTED = 130  # Ctrl-C


class DocqaError(Exception):
    """Base class: the message says what happened and what to do."""

    exit_code = ExitCode.FAILURE


class UsageError(DocqaError):
    exit_code = ExitCode.USAGE


class ConfigError(DocqaError):
    exit_code = ExitCode.CONFIG


class NoDocumentsError(DocqaError):
    exit_code = ExitCode.NO_INPUT


class VectorStoreError(DocqaError):
    """The index is missing, damaged, or does not match the configured embedding model."""

    exit_code = ExitCode.INDEX


class ModelError(DocqaError):
    exit_code = ExitCode.MODEL


class IndexBusyError(DocqaError):
    exit_code = ExitCode.BUSY


class IndexWriteError(DocqaError):
    exit_code = ExitCode.WRITE


class IngestInterrupted(DocqaError):
    exit_code = ExitCode.INTERRUPTED
