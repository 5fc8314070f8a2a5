"""Celery workers that answer the API's questions, on this machine or any other."""
