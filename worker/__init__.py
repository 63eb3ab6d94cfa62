"""The imperative shell: Celery app, tasks, schedule, persistence and the CLI."""
