"""Ingestion: fetch feed documents and turn them into clean, typed items. No Celery, no DB."""
