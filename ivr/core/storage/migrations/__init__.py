"""Alembic migrations (script_location for ``ivr.core.storage.migrate``; no alembic.ini needed)."""
