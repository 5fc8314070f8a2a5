"""The HTTP API: FastAPI routes over the job executors (inline, or Celery workers)."""
