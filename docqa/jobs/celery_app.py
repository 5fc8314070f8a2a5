"""The Celery app of the API (which sends questions as tasks) and of the workers (which run
them): one configuration for both sides of the queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docqa.config import Settings

if TYPE_CHECKING:
    from celery import Celery

QUEUE = "docqa"
# A question's priority is how many of its key's questions are unanswered before it (at most
# 9), and workers take priority 0 first: another key's single question goes ahead of a busy
# key's waiting ones. Kombu keeps each priority in a Redis list of its own.
PRIORITIES = list(range(10))
PRIORITY_SEP = ":"
ANSWER_TASK = "docqa.answer"
RESTORE_MARGIN_S = 30  # a message unacknowledged this long past the time limit is redelivered


def make_celery(url: str, settings: Settings) -> Celery:
    """The Celery app of the API (which sends tasks) and of the workers (which run them)."""
    from celery import Celery

    app = Celery("docqa", broker=url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live on the job board (docqa.jobs.board)
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a busy worker holds no second question
        worker_proc_alive_timeout=600,  # loading the model in a new process may take a while
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # Redis restarting is waited for, not fatal
        task_publish_retry_policy={"max_retries": 10, "interval_step": 0.5, "interval_max": 3},
        broker_transport_options={
            # A whole worker killed: its unacknowledged question runs elsewhere after this.
            "visibility_timeout": int(settings.server.request_timeout_s + RESTORE_MARGIN_S),
            "unacked_restore_interval": 5,
            "health_check_interval": 10,
            "socket_keepalive": True,
            "priority_steps": PRIORITIES,
            "sep": PRIORITY_SEP,
        },
    )
    return app


def queue_lists() -> list[str]:
    """The Redis lists the queue's waiting messages are in, one per priority."""
    return [QUEUE, *(f"{QUEUE}{PRIORITY_SEP}{priority}" for priority in PRIORITIES[1:])]
