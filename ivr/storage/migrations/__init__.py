"""Alembic migrations (script_location for ``ivr.storage.migrate``; no alembic.ini needed)."""
