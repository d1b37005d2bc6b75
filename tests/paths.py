"""Where the tests find the repository and the shared human recordings (one place)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# ../shared/speech/zh beside the clone: human Mandarin recordings with transcripts; the tests on
# them skip, saying why, when it is not there
SPEECH = REPO.parent / "shared" / "speech" / "zh"
