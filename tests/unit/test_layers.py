"""The house plan is executable: import-linter's contracts (pyproject ``[tool.importlinter]``,
from ``../shared/design.md``) hold. A new import that breaks a layer fails here with the
contract's name and the offending import chain."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    res = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout and "4 kept" in res.stdout, res.stdout[-2000:]
