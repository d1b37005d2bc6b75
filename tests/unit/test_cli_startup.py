"""``ivr up`` starts light: the tool modules' subcommands are imported only for the commands
that need them, so a server restarted after a crash holds its orphaned callers within half a
second (``ivr.calls.orphans``); every other command still finds its subcommands."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner


def test_the_command_module_imports_no_tool_module() -> None:
    probe = ("import sys; from ivr.tools.cli import main; "
             "print(sorted(m for m in sys.modules if m.startswith('ivr.tools.') "
             "and m != 'ivr.tools.cli'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_every_subcommand_is_still_found() -> None:
    from ivr.tools.cli import main

    listed = CliRunner().invoke(main, ["--help"]).output
    for name in ("up", "drill", "bench", "kb", "campaigns", "privacy", "eval", "bots"):
        assert f"  {name} " in listed, name
    drills = CliRunner().invoke(main, ["drill", "--help"]).output
    for name in ("server-kill", "load", "remote-asterisk", "long-call", "speech-load"):
        assert name in drills
    assert "publish" in CliRunner().invoke(main, ["bots", "--help"]).output
