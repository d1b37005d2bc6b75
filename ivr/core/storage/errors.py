"""Storage errors. Everything the storage layer raises at run time is a ``StorageError``."""

from __future__ import annotations


class StorageError(RuntimeError):
    """A storage operation failed; the message says which operation and on what."""


class EmbeddedServerError(StorageError):
    """An embedded server (PostgreSQL, Redis) could not be started or used."""


class RedisUnavailableError(StorageError):
    """Redis does not answer at the configured address."""


class CallNotFoundError(StorageError, LookupError):
    """No call row with that id."""


class InvalidCallDataError(StorageError, ValueError):
    """A value the calls table does not accept (unknown transport, direction or outcome)."""
