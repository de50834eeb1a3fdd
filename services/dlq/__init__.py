"""Dead letter queue of failed Celery tasks."""
