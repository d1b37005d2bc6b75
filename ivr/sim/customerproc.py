"""The customer simulator in a process of its own, as real customers' phones would be.

Run in the server's process, the simulated phones share its event loop and its CPU time: when
the server is busy (Whisper, Kokoro, thirty survey calls), their RTP goes out in bursts, their
answers come a prompt late, and Asterisk's AMD and our recogniser hear audio no phone would send.
Here the parent (a test or ``ivr bench campaigns``) starts ``python -m ivr.sim.customerproc``,
hands it its settings on stdin, and asks it for its counts; the child owns the SIP phone.

The line protocol (one JSON object per line, the child's stdout):

* parent -> child, first line: ``{"host", "port", "username", "password", "max_calls",
  "register", "local_port", "local_host", "voices": {text: path of an 8 kHz mono 16-bit
  WAV}}`` (on stdin: no secret on a command line);
* child -> parent: ``{"ready": true}`` once the phone is registered (or listening);
* parent -> child: ``report`` -> ``{"calls", "sources", "hung_up_on", "errors", "cpu_s"}``;
* parent -> child: ``quit`` (or end of stdin) -> the last report, then the child exits.

The child's log (warnings and up) goes to its stderr; the parent logs each line under
``ivr.sim.customers`` and keeps the last ones for its error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
import wave
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.core.config import AsteriskSettings
from ivr.sim.customers import CustomerSimulator

log = logging.getLogger("ivr.sim.customers")

READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
STDERR_KEEP = 40  # lines of the child's log kept for an error message


@dataclass
class SimReport:
    calls: Counter[str] = field(default_factory=Counter)  # behaviour -> calls received
    hung_up_on: Counter[str] = field(default_factory=Counter)  # ended by the far end
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # the simulator's CPU time
    sources: Counter[str] = field(default_factory=Counter)  # INVITEs per sending address

    @classmethod
    def of(cls, data: dict[str, Any]) -> SimReport:
        return cls(Counter(data.get("calls", {})), Counter(data.get("hung_up_on", {})),
                   list(data.get("errors", [])), float(data.get("cpu_s", 0.0)),
                   Counter(data.get("sources", {})))


class SimulatorProcess:
    """``CustomerSimulator`` in a child process; ``report()`` fetches its counts."""

    def __init__(self, asterisk: AsteriskSettings, voices: dict[str, Path], *,
                 username: str = "customer", max_calls: int = 64, register: bool = True,
                 local_port: int = 0, local_host: str = "127.0.0.1") -> None:
        self.config = {
            "host": asterisk.bind_host, "port": asterisk.sip_port, "username": username,
            "password": asterisk.caller_password.get_secret_value(), "max_calls": max_calls,
            "register": register, "local_port": local_port, "local_host": local_host,
            "voices": {text: str(path) for text, path in voices.items()},
        }
        self.last = SimReport()
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_KEEP)
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.sim.customerproc", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._drain = asyncio.create_task(self._read_stderr(), name="simulator-stderr")
        try:
            await self._send(json.dumps(self.config, ensure_ascii=False))
            reply = await asyncio.wait_for(self._reply(), READY_TIMEOUT_S)
        except (TimeoutError, OSError, RuntimeError) as exc:
            await self.close()
            raise RuntimeError(f"the customer simulator did not start ({exc}): "
                               + " | ".join(self._stderr)) from exc
        if not reply.get("ready"):
            await self.close()
            raise RuntimeError(f"the customer simulator did not start: {reply}")

    async def report(self) -> SimReport:
        await self._send("report")
        self.last = SimReport.of(await asyncio.wait_for(self._reply(), EXIT_TIMEOUT_S))
        return self.last

    async def close(self) -> SimReport:
        proc, self._proc = self._proc, None
        if proc is None:
            return self.last
        try:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.write(b"quit\n")
                await proc.stdin.drain()
                proc.stdin.close()
                line = await asyncio.wait_for(proc.stdout.readline(), EXIT_TIMEOUT_S) \
                    if proc.stdout is not None else b""
                if line:
                    self.last = SimReport.of(json.loads(line))
            await asyncio.wait_for(proc.wait(), EXIT_TIMEOUT_S)
        except (TimeoutError, OSError, ValueError) as exc:
            log.warning("customer simulator did not stop cleanly (%s): killed", exc)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._drain is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain, 2.0)
        return self.last

    async def _send(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise RuntimeError("the customer simulator is not running")
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()

    async def _reply(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the customer simulator exited ({self._proc.returncode})")
        data = json.loads(line)
        if not isinstance(data, dict):
            raise RuntimeError(f"unexpected reply from the customer simulator: {line[:200]!r}")
        return data

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            log.info("simulator: %s", text)


# ---- the child ---------------------------------------------------------------------------
def _read_voice(path: str) -> bytes:
    with wave.open(path) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
            raise ValueError(f"{path}: not 8 kHz mono 16-bit")
        return w.readframes(w.getnframes())


def _report(sim: CustomerSimulator) -> str:
    return json.dumps({"calls": dict(sim.calls), "sources": dict(sim.sources),
                       "hung_up_on": dict(sim.hung_up_on),
                       "errors": sim.errors, "cpu_s": round(time.process_time(), 2)},
                      ensure_ascii=False)


async def _child() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = json.loads(await reader.readline())
    voices = {text: _read_voice(path) for text, path in config["voices"].items()}

    async def speak(text: str) -> bytes:
        try:
            return voices[text]
        except KeyError:
            raise RuntimeError(f"no recording of {text!r} was given") from None

    asterisk = AsteriskSettings(bind_host=config["host"], sip_port=config["port"],
                                caller_password=config["password"])
    sim = CustomerSimulator(asterisk, speak, username=config["username"],
                            max_calls=config["max_calls"],
                            register=config.get("register", True),
                            local_port=config.get("local_port", 0),
                            local_host=config.get("local_host", "127.0.0.1"))
    await sim.start()
    print(json.dumps({"ready": True}), flush=True)
    try:
        while raw := await reader.readline():  # b"" at the end of stdin: the parent is gone
            line = raw.decode(errors="replace").strip()
            if line == "quit":
                break
            if line == "report":
                print(_report(sim), flush=True)
            elif line:
                log.warning("unknown command %r", line[:40])
    finally:
        await sim.close()
    print(_report(sim), flush=True)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(_child()))


if __name__ == "__main__":
    main()
