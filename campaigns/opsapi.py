"""What the operations page does to campaigns: create one from a CSV, start/pause/resume/stop.

A thin layer over :mod:`campaigns.repo` (the one importer and the one status switch the CLI and
the dialer use), shaping results for the web API and turning database failures into
StorageError. The status column is the switch the dialer reads before every dial: pause stops
new dials at once, calls in progress finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from campaigns import repo
from campaigns.phones import normalise as normalise_phone
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

__all__ = ["Created", "control", "create_from_csv", "normalise_phone"]

_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
MAX_ROWS = 200_000


@dataclass(slots=True)
class Created:
    campaign_id: int
    name: str
    loaded: int = 0
    skipped: int = 0  # duplicates and DNC numbers
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "error": text}

    def as_dict(self) -> dict[str, Any]:
        return {"campaign": {"id": self.campaign_id, "name": self.name},
                "import": {"loaded": self.loaded, "skipped": self.skipped,
                           "errors": self.errors}}


async def create_from_csv(sessions: SessionFactory, *, name: str, survey: str, line: str,
                          csv_text: str) -> Created:
    """A new campaign (draft) with the CSV's contacts. ValueError for an unusable file or
    settings (nothing is created then)."""
    if line not in ("oil", "gas", "general"):
        raise ValueError("业务线无效")
    if csv_text.count("\n") > MAX_ROWS:
        raise ValueError(f"文件超过 {MAX_ROWS} 行")
    repo.parse_rows(csv_text)  # ValueError for a file without a phone column: create nothing
    try:
        campaign_id = await repo.create_campaign(sessions, name=name[:100], survey=survey[:64],
                                                 line=line)
        report = await repo.import_contacts(sessions, campaign_id, csv_text)
    except _DB_ERRORS as exc:
        raise StorageError(f"campaigns.create failed: {type(exc).__name__}: {exc}") from exc
    out = Created(campaign_id=campaign_id, name=name[:100], loaded=report.loaded)
    for line_no, reason in report.problems:
        if "免打扰" in reason or "重复" in reason or "已有" in reason:
            out.skipped += 1  # duplicates and DNC numbers: skipped, not errors
        else:
            out.errors.append({"line": line_no, "error": reason})
    return out


async def control(sessions: SessionFactory, campaign_id: int, action: str) -> str:
    """Apply ``action`` (start | pause | resume | stop); returns the new status. LookupError:
    no such campaign; ValueError (Chinese): unknown action, or not allowed in the current
    status."""
    if action not in repo.CONTROL:
        raise ValueError(f"未知操作 {action}")
    try:
        return await repo.set_status(sessions, campaign_id, action)
    except _DB_ERRORS as exc:
        raise StorageError(f"campaigns.{action}({campaign_id}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc
