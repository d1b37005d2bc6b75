"""Knowledge files: Markdown, CSV or JSONL, parsed into ``EntryDraft``s with their line numbers.

Markdown (``.md``): one entry per ``## `` heading; ``{#entry-id}`` at the end of the heading
names it; ``key: value`` lines right under the heading set ``line`` (oil / gas / general) and
``tags`` (comma separated, ``，`` and ``、`` too); the rest up to the next heading is the body::

    ## 加油卡丢失如何挂失 {#oil-card-loss}
    line: oil
    tags: 挂失, 加油卡

    持卡人可拨打 956100 ……

A ``# `` heading (the file's title) and text before the first entry are ignored.

CSV (``.csv``, UTF-8, header row): columns ``id, line, title, body, tags``.
JSONL (``.jsonl``): one object per line with the same keys (``tags`` a list or a string).

Each bad entry is reported with its line number (``Problem``) and skipped; the good ones load.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handoff.knowledge.repository import EntryDraft, KnowledgeError, validate

_HEADING = re.compile(r"^##\s+(.+?)\s*(?:\{#([^}\s]+)\})?\s*$")
_META = re.compile(r"^(id|line|tags)\s*[:：]\s*(.*)$", re.IGNORECASE)
_TAG_SPLIT = re.compile(r"[,，、;；]")
FORMATS = ("md", "csv", "jsonl")


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


Parsed = tuple[int, EntryDraft | Problem]


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(t.strip() for t in _TAG_SPLIT.split(str(value)) if t.strip())


def _draft(lineno: int, source: str, data: dict[str, Any]) -> Parsed:
    try:
        missing = [k for k in ("line", "title", "body") if not str(data.get(k) or "").strip()]
        if missing:
            return lineno, Problem(lineno, f"missing {', '.join(missing)}")
        draft = validate(EntryDraft(
            line=str(data["line"]), title=str(data["title"]), body=str(data["body"]),
            tags=_tags(data.get("tags")), entry_id=str(data.get("id") or "").strip() or None,
            source=f"{source}:{lineno}"))
    except KnowledgeError as exc:
        return lineno, Problem(lineno, str(exc))
    return lineno, draft


def parse_markdown(text: str, source: str) -> Iterator[Parsed]:
    current: dict[str, Any] | None = None
    start = 0
    body: list[str] = []
    in_meta = False

    def finish() -> Parsed | None:
        if current is None:
            return None
        current["body"] = "\n".join(body).strip()
        return _draft(start, source, current)

    for n, raw in enumerate(text.splitlines(), 1):
        m = _HEADING.match(raw)
        if m:
            done = finish()
            if done is not None:
                yield done
            current, start, body, in_meta = {"title": m.group(1), "id": m.group(2)}, n, [], True
            continue
        if current is None:
            continue
        meta = _META.match(raw.strip()) if in_meta else None
        if meta:
            current[meta.group(1).lower()] = meta.group(2).strip()
            continue
        if in_meta and not raw.strip():
            continue
        in_meta = False
        body.append(raw)
    done = finish()
    if done is not None:
        yield done


def parse_csv(text: str, source: str) -> Iterator[Parsed]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"line", "title", "body"} <= {
            f.strip() for f in reader.fieldnames}:
        yield 1, Problem(1, "header must name at least line, title, body (and id, tags)")
        return
    for row in reader:
        data = {(k or "").strip(): v for k, v in row.items()}
        yield _draft(reader.line_num, source, data)


def parse_jsonl(text: str, source: str) -> Iterator[Parsed]:
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield n, Problem(n, f"not JSON: {exc.msg}")
            continue
        if not isinstance(data, dict):
            yield n, Problem(n, "not a JSON object")
            continue
        yield _draft(n, source, data)


def parse_file(path: Path, fmt: str | None = None) -> list[Parsed]:
    """Every entry of the file, in order, a draft or a problem (``KnowledgeError`` when the
    file cannot be read at all)."""
    kind = (fmt or path.suffix.lstrip(".")).lower()
    kind = {"markdown": "md", "json": "jsonl", "ndjson": "jsonl"}.get(kind, kind)
    if kind not in FORMATS:
        raise KnowledgeError(f"{path}: unknown format {kind!r} (md, csv or jsonl)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"cannot read {path}: {exc}") from exc
    parser = {"md": parse_markdown, "csv": parse_csv, "jsonl": parse_jsonl}[kind]
    return list(parser(text, path.name))
