"""``ivr kb``: the agent-assist knowledge base from the command line.

- ``ivr kb import FILE [--format md|csv|jsonl]``: loads entries with a progress bar. Imported
  entries are approved at once by the ``importer`` role (reviewer ``importer``, reason
  ``imported from FILE``): an import is itself the reviewed source. Bad entries are reported by
  line and skipped; the good ones load; an entry whose approved text is unchanged is left as is.
  Exit status 1 when any entry was bad.
- ``ivr kb search "text" [--line oil|gas|general] [-k 5]``: the hybrid search an agent gets.
- ``ivr kb stats``: entries by status, passages.
- ``ivr kb bench``: retrieval latency and HNSW recall@5 at scale (``handoff.knowledge.bench``).

The database is ``DATABASE_URL`` or the embedded PostgreSQL (migrated to head first).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ivr.core.config import Settings
from ivr.core.lines import LINES
from ivr.core.storage.standalone import migrated_url

if TYPE_CHECKING:
    from handoff.knowledge.repository import KnowledgeBase
    from handoff.knowledge.search import Hit


database = migrated_url  # the migrated configured/embedded database, for one command


@contextlib.asynccontextmanager
async def knowledge_base(settings: Settings, url: str) -> AsyncIterator[KnowledgeBase]:
    from handoff.embeddings import EmbeddingPool, build_embedder
    from handoff.knowledge.repository import KnowledgeBase
    from handoff.knowledge.tables import EMBEDDING_DIM
    from ivr.core.storage.db import create_engine, session_factory

    engine = create_engine(url)
    embedder = build_embedder(settings.knowledge.embedder, settings.llm,
                              dimensions=EMBEDDING_DIM)
    pool = EmbeddingPool(embedder) if embedder is not None else None
    try:
        yield KnowledgeBase(session_factory(engine), pool)
    finally:
        if pool is not None:
            pool.close()
        await engine.dispose()


@click.group("kb")
def kb_group() -> None:
    """Agent-assist knowledge base: import, search, stats, bench."""


@kb_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "jsonl"]), default=None,
              help="File format (default: from the file name's suffix).")
@click.pass_obj
def import_cmd(settings: Settings, file: Path, fmt: str | None) -> None:
    """Load knowledge entries from FILE (Markdown, CSV or JSONL), approved by the importer."""
    from handoff.knowledge.importer import Problem, parse_file
    from handoff.knowledge.repository import KnowledgeError

    try:
        parsed = parse_file(file, fmt)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from exc

    async def run() -> tuple[dict[str, int], list[str]]:
        counts = {"added": 0, "updated": 0, "unchanged": 0, "bad": 0}
        problems: list[str] = []
        async with database(settings) as url, knowledge_base(settings, url) as kb:
            with click.progressbar(parsed, label=f"importing {file.name}",
                                   show_pos=True) as bar:
                for lineno, item in bar:
                    if isinstance(item, Problem):
                        counts["bad"] += 1
                        problems.append(f"{file}:{item}")
                        continue
                    try:
                        outcome, _row = await kb.import_approved(item)
                    except KnowledgeError as exc:
                        counts["bad"] += 1
                        problems.append(f"{file}:line {lineno}: {exc}")
                        continue
                    counts[outcome] += 1
        return counts, problems

    t = time.monotonic()
    counts, problems = asyncio.run(run())
    for p in problems:
        click.echo(click.style("bad entry ", fg="red") + p, err=True)
    click.echo(f"{len(parsed)} entries in {file.name}: {counts['added']} added, "
               f"{counts['updated']} updated (new version), {counts['unchanged']} unchanged, "
               f"{counts['bad']} bad; approved by the importer role "
               f"({time.monotonic() - t:.1f} s, embedder {settings.knowledge.embedder})")
    if counts["bad"]:
        raise SystemExit(1)


@kb_group.command("search")
@click.argument("text")
@click.option("--line", type=click.Choice(LINES), default=None,
              help="Business line (general entries are always included).")
@click.option("-k", "k", type=click.IntRange(1, 20), default=5, show_default=True)
@click.pass_obj
def search_cmd(settings: Settings, text: str, line: str | None, k: int) -> None:
    """Search the approved knowledge as the agent desktop does."""
    async def run() -> tuple[list[Hit], float]:
        async with database(settings) as url, knowledge_base(settings, url) as kb:
            await kb.search("预热", line=line, k=1)  # loads the model and jieba once
            t = time.perf_counter()
            hits = await kb.search(text, line=line, k=k)
            return list(hits), time.perf_counter() - t

    hits, elapsed = asyncio.run(run())
    if not hits:
        click.echo("no approved entry matches")
    for i, h in enumerate(hits, 1):
        click.echo(click.style(f"{i}. [{h.line}] {h.title}", bold=True)
                   + f"  ({h.entry_id} v{h.version}, score {h.score:.3f})")
        click.echo(f"   why: {h.why}")
        passage = h.passage.replace("\n", " ")
        click.echo(f"   {passage[:160]}{'…' if len(passage) > 160 else ''}")
    click.echo(f"({len(hits)} hits in {elapsed * 1000:.0f} ms)", err=True)


@kb_group.command("stats")
@click.pass_obj
def stats_cmd(settings: Settings) -> None:
    """Entries by status and the number of searchable passages."""
    async def run() -> dict[str, int]:
        async with database(settings) as url, knowledge_base(settings, url) as kb:
            return await kb.counts()

    for key, value in sorted(asyncio.run(run()).items()):
        click.echo(f"{key}: {value}")


@kb_group.command("bench")
@click.option("--entries", type=click.IntRange(100, 2_000_000), default=100_000,
              show_default=True)
@click.option("--queries", type=click.IntRange(10, 10_000), default=200, show_default=True)
@click.pass_obj
def bench_cmd(settings: Settings, entries: int, queries: int) -> None:
    """Retrieval p50/p95 and HNSW recall@5 vs exact search on synthetic clustered vectors, in a
    scratch database (dropped afterwards)."""
    from handoff.knowledge.bench import run_bench

    async def run() -> list[str]:
        async with database(settings) as url:
            result = await run_bench(url, entries=entries, queries=queries,
                                     progress=lambda m: click.echo(m, err=True))
            return result.lines()

    lines = asyncio.run(run())
    click.echo(f"$ ivr kb bench --entries {entries} --queries {queries}")
    for line in lines:
        click.echo(line)


def register(main: click.Group) -> None:
    main.add_command(kb_group)
