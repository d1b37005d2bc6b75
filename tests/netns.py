"""Network namespaces for the tests that put Asterisk on another host (one place)."""

from __future__ import annotations

import os
import shutil
import subprocess


def no_netns() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and iproute2 (ip netns)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True)
    return None if probe.returncode == 0 else "network namespaces are not available here"


def namespaces() -> str:
    """``ip netns list``: what a test must have removed."""
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
