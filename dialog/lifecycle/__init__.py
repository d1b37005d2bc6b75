"""The bot lifecycle: draft -> tested -> published (-> retired), versions kept in PostgreSQL.

- ``tables``: the ``bot_versions`` and ``bot_publications`` tables (migration ``0003``).
- ``repository``: ``BotVersions``, import, test results, publish, rollback, diff, seed.
- ``checks``: run a version's ``tests:`` conversations before it may be published.
- ``store``: ``CatalogStore``, the server's current published catalog, reloaded in place.

Kept import-light on purpose: ``ivr.app.tables.MODEL_MODULES`` imports ``tables`` for Alembic.
"""
