"""Errors as the HTTP API answers them: OpenAI's shape, a useful message, the right status —
never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

log = logging.getLogger("docqa.server")

# The HTTP status of each kind of job error (docqa.jobs.runner.error_info).
STATUS_OF_KIND = {
    "usage": 400,
    "no_input": 400,
    "index": 503,
    "model": 503,
    "config": 500,
    "busy": 409,
    "write": 507,
    "interrupted": 503,
    "timeout": 504,
    "cancelled": 409,
    "worker_lost": 503,
    "no_worker": 503,
    "internal": 500,
}
# What clients are told of the job errors whose messages describe the server's own files and
# machines (paths, addresses); the server's log keeps those messages.
PUBLIC_MESSAGES = {
    "index": "the index is missing, empty or unusable: run ingest (or upload a document)",
    "model": "the model cannot be loaded or run",
    "config": "the server's settings are invalid",
    "no_input": "the data folder holds no document to index: upload one",
    "write": "the index could not be written (is the server's disk full or read-only?)",
    "busy": "another ingest is writing the index: try again when it has finished",
    "interrupted": "the job was interrupted (the server stopped, or lost its job queue): try again",
}
SEE_LOG = "; the server's log has the details"
QUEUE_UNREACHABLE = "the job queue cannot be reached: try again shortly"
TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    403: "permission_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error response: status, message, and which request field it concerns."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers

    @classmethod
    def of_job(cls, error: dict[str, Any]) -> ApiError:
        """The response for a job that failed with `error` (a runner's error_info). A
        question cancelled or stopped at the time limit is not to be sent again as it is
        (OpenAI's clients retry 409 and 5xx unless told not to)."""
        kind = str(error.get("type", "internal"))
        final = {"x-should-retry": "false"} if kind in ("cancelled", "timeout") else None
        return cls(
            STATUS_OF_KIND.get(kind, 500), str(error.get("message")), code=kind, headers=final
        )

    def body(self) -> dict[str, Any]:
        kind = TYPE_OF_STATUS.get(self.status, "server_error" if self.status >= 500 else "")
        return {
            "error": {
                "message": self.message,
                "type": kind or "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        from fastapi.responses import JSONResponse

        headers = dict(self.headers) if self.headers else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def public_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """A job's error (a runner's error_info) as clients are shown it: a message that may name
    the server's files or machines is logged, and replaced by its kind's PUBLIC_MESSAGES."""
    kind = error.get("type")
    if kind not in PUBLIC_MESSAGES:
        return dict(error)
    log.warning("a job failed (%s): %s", kind, error.get("message"))
    return {**error, "message": PUBLIC_MESSAGES[kind] + SEE_LOG}


def install_handlers(app: FastAPI) -> None:
    """Every error, the framework's own included, answered in the API's error shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from docqa.jobs.board import BoardUnavailable

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        error = exc.errors()[0]
        where = [str(part) for part in error.get("loc", ()) if part != "body"]
        param = ".".join(where) or None
        message = error.get("msg", "invalid request")
        if error.get("type") == "json_invalid":
            message, param = "the body is not valid JSON", None
        elif param:
            message = f"{param}: {message}"
        return ApiError(400, message, param=param, code=error.get("type")).response()

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return ApiError(exc.status_code, str(exc.detail), headers=exc.headers).response()

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("%s", exc)
        return ApiError(503, QUEUE_UNREACHABLE, code="queue_unavailable").response()

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return ApiError(
            500, f"unexpected {type(exc).__name__}: the server's log has the details"
        ).response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(BoardUnavailable, unavailable)
    app.add_exception_handler(Exception, unexpected)
