"""``ivr eval``: measure the speech recogniser (accuracy on a manifest, speed, VAD timings)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ivr.core.config import Settings


def _progress(message: str) -> None:
    click.echo(click.style("» ", fg="cyan") + message, err=True)


def _rates(rate: str) -> list[str]:
    return ["8k", "16k"] if rate == "all" else [rate]


def _apply(settings: Settings, beam: int | None, prompt: str | None, threads: int | None) -> None:
    if beam is not None:
        settings.asr.beam_size = beam
    if prompt is not None:
        settings.asr.initial_prompt = prompt
    if threads is not None:
        settings.asr.threads = threads


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _build(settings: Settings, backend: str | None) -> Any:
    from asr.base import ASRError
    from asr.factory import build_recognizer

    try:
        rec = build_recognizer(settings.asr, _progress, backend=backend)
    except ASRError as exc:
        raise click.ClickException(str(exc)) from exc
    if rec is None:
        raise click.ClickException("ASR back end is 'none': nothing to evaluate")
    return rec


def _recordings(manifest: str) -> list[Any]:
    from asr.base import AudioError
    from asr.evaluate import load_manifest

    try:
        recs = load_manifest(Path(manifest))
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    if not recs:
        raise click.ClickException(f"{manifest} lists no recordings")
    return recs


@click.group("eval")
def eval_group() -> None:
    """Measure speech recognition: CER, real-time factor, load time, VAD latency."""


_backend_opt = click.option(
    "--backend", type=click.Choice(["whisper", "funasr", "funasr_ws", "paddlespeech"]),
    default=None,
    help="Recogniser (default: asr.backend from the settings).",
)  # fmt: skip
_rate_opt = click.option(
    "--rate", type=click.Choice(["8k", "16k", "all"]), default="all", show_default=True,
    help="Which versions: <name>_8k.wav (telephone), <name>.wav (16 kHz), or both.",
)  # fmt: skip
_beam_opt = click.option("--beam", type=int, default=None, help="Whisper beam size.")
_prompt_opt = click.option("--prompt", default=None, help="Whisper initial prompt.")
_threads_opt = click.option("--threads", type=int, default=None, help="CPU threads per decode.")


@eval_group.command("asr")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@_backend_opt
@_rate_opt
@_beam_opt
@_prompt_opt
@_threads_opt
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def eval_asr(
    settings: Settings,
    manifest: str,
    backend: str | None,
    rate: str,
    beam: int | None,
    prompt: str | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """CER per file and overall (Simplified, punctuation stripped), RTF and model load time
    for the recordings MANIFEST lists (TSV: name, transcript; <name>.wav and <name>_8k.wav)."""
    from asr.evaluate import evaluate

    _apply(settings, beam, prompt, threads)
    recordings = _recordings(manifest)
    rec = _build(settings, backend)

    async def run() -> Any:
        try:
            return await evaluate(rec, recordings, _rates(rate))
        finally:
            await rec.close()

    report = asyncio.run(run())
    data = report.as_dict()
    data["settings"] = _asr_settings(settings)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'file':<28} {'rate':>4} {'audio':>6} {'RTF':>6} {'CER':>6}  text")
    for f in report.files:
        click.echo(
            f"{f.name[:28]:<28} {f.rate:>4} {f.audio_s:>5.1f}s {f.rtf:>6.3f} {_fmt(f.cer):>6}"
            f"  {f.hypothesis}"
        )
    click.echo(f"model load {report.load_s:.2f} s ({report.backend}, {_describe(settings)})")
    for s in data["overall"]:
        click.echo(
            f"{s['rate']:>4}: CER {_fmt(s['cer'])} over {s['ref_chars']} chars in "
            f"{s['scored']}/{s['files']} files, RTF {_fmt(s['rtf'])}"
        )


@eval_group.command("bench")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@_backend_opt
@_beam_opt
@_threads_opt
@click.option("--streams", type=int, default=4, show_default=True,
              help="Utterances finishing at once, for the concurrency figure.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_obj
def eval_bench(
    settings: Settings,
    manifest: str,
    backend: str | None,
    beam: int | None,
    threads: int | None,
    streams: int,
    as_json: bool,
) -> None:
    """Benchmark: model load, RTF at 8 kHz, concurrent utterances, VAD time per frame."""
    from asr.evaluate import concurrency, evaluate, vad_timing

    _apply(settings, beam, None, threads)
    recordings = _recordings(manifest)
    paths = [p for r in recordings if (p := r.path("8k") or r.path("16k")) is not None]
    t = time.monotonic()
    rec = _build(settings, backend)
    build_s = time.monotonic() - t

    async def run() -> tuple[Any, dict[str, float]]:
        try:
            report = await evaluate(rec, recordings, ["8k"])
            conc = await concurrency(rec, paths, streams)
            return report, conc
        finally:
            await rec.close()

    report, conc = asyncio.run(run())
    figures = {
        "command": " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]]),
        "settings": _asr_settings(settings),
        "load_s": report.load_s,
        "build_s": build_s,
        "single": report.summary("8k"),
        "concurrent": conc,
        "vad_per_20ms_frame": vad_timing(paths),
    }
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    single = figures["single"]
    click.echo(f"$ {figures['command']}")
    click.echo(f"recogniser   {report.backend} ({_describe(settings)})")
    click.echo(f"model load   {report.load_s:.2f} s (build incl. assembly check {build_s:.2f} s)")
    click.echo(
        f"8 kHz, one at a time: RTF {_fmt(single['rtf'])} over {single['audio_s']:.1f} s "
        f"of audio, CER {_fmt(single['cer'])}"
    )
    click.echo(
        f"{conc['streams']} utterances at once: {conc['wall_s']:.2f} s wall, "
        f"{conc['throughput_x']:.1f}x real time, latency p50 {conc['latency_p50_s']:.2f} s, "
        f"max {conc['latency_max_s']:.2f} s"
    )
    for kind, v in figures["vad_per_20ms_frame"].items():
        click.echo(
            f"endpointer+{kind} VAD per 20 ms frame: mean {v['mean_us']:.0f} us, "
            f"p99 {v['p99_us']:.0f} us, max {v['max_us']:.0f} us ({v['frames']} frames)"
        )


def _asr_settings(settings: Settings) -> dict[str, Any]:
    a = settings.asr
    return {
        "backend": a.backend, "beam_size": a.beam_size, "threads": a.threads,
        "workers": a.workers, "initial_prompt": a.initial_prompt, "language": a.language,
    }  # fmt: skip


def _describe(settings: Settings) -> str:
    a = settings.asr
    return f"beam {a.beam_size}, {a.threads} thread(s) x {a.workers} worker(s), int8"


# ---- does the caller reach the right bot? ---------------------------------------------------
@eval_group.command("intents")
@click.argument("tsv", type=click.Path(exists=True, dir_okay=False))
@_backend_opt
@_prompt_opt
@click.option("--holdout", is_flag=True,
              help="Match against the bots without the set's own sentences (their similar "
                   "questions equal to a row's text or reference are left out).")
@click.option("--hints", default=None,
              help="Replace the first question's recogniser hints (default: what the dialog "
                   "sends): 'bots' (the bots' distinctive words), 'questions' (their standard "
                   "questions), or the words themselves.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the summary and every row (text, bot, score, layer) to this file.")
@click.pass_obj
def eval_intents(
    settings: Settings,
    tsv: str,
    backend: str | None,
    prompt: str | None,
    holdout: bool,
    hints: str | None,
    json_out: str | None,
) -> None:
    """Route every row of TSV (text or audio, through the live path) and score the bots reached.

    TSV columns (header row): kind (text|audio), input (text or WAV path), expected (bot id or
    name), optional reference/source/...; see dialog/evaluate.py."""
    from ivr.tools.evalintents import print_report, run_file

    _apply(settings, None, prompt, None)
    report = run_file(settings, Path(tsv), backend=backend, holdout=holdout,
                      progress=_progress, hints=hints)
    _report(report, print_report, json_out, "per-row")


Show = Callable[[dict[str, Any], Callable[[str], None]], None]


def _report(report: dict[str, Any], show: Show, json_out: str | None, what: str) -> None:
    """Print a report (with the command that made it) and write it as JSON when asked."""
    report["command"] = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])
    show(report, click.echo)
    if json_out:
        Path(json_out).write_text(json.dumps(report, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
        click.echo(f"{what} details in {json_out}")


@eval_group.command("dialogs")
@click.argument("tsv", type=click.Path(exists=True, dir_okay=False))
@click.option("--holdout", is_flag=True,
              help="Simulate against the bots without the set's own sentences.")
@click.option("--source", default=None, help="Only rows of this source (paraphrase, similar).")
@click.option("--part", default=None,
              help="With a bench speech JSON report: which of its reports (e.g. test/audio).")
@click.option("--llm", is_flag=True,
              help="Ask llm.base_url's model when routing is unsure (nlu.llm_budget_ms).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the summary and every simulated dialog to this file.")
@click.pass_obj
def eval_dialogs(settings: Settings, tsv: str, holdout: bool, source: str | None,
                 part: str | None, llm: bool, json_out: str | None) -> None:
    """Simulated callers, one per row of TSV, through the dialog engine: each says the row's
    words, answers yes/no and either/or questions truthfully and rephrases with the same bot's
    other rows when asked again (dialog/simulate.py). A .json file is a report of `ivr eval
    intents` or `ivr bench speech`: its audio rows, as the recogniser heard them."""
    from dialog.evaluate import EvalFileError
    from ivr.tools.evaldialogs import print_dialogs, run_dialogs

    try:
        report = run_dialogs(settings, Path(tsv), holdout=holdout, source=source, part=part,
                             llm=llm)
    except EvalFileError as exc:
        raise click.ClickException(str(exc)) from exc
    _report(report, print_dialogs, json_out, "per-dialog")


@eval_group.command("rescore")
@click.argument("report", type=click.Path(exists=True, dir_okay=False))
@click.option("--part", default="dev/audio", show_default=True,
              help="Which of the bench speech report's reports (dev/audio, test/audio).")
@click.option("--bots", type=int, default=5, show_default=True,
              help="The matcher's best candidates scored.")
@click.option("--phrases", type=int, default=4, show_default=True,
              help="Phrases per candidate (its standard question and the nearest similar).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the summary and every row to this file.")
@click.pass_obj
def eval_rescore(settings: Settings, report: str, part: str, bots: int, phrases: int,
                 json_out: str | None) -> None:
    """Would Whisper's forced alignment pick the right bot among the matcher's candidates?
    REPORT is an `ivr bench speech --json` report; each audio row's utterance is encoded once
    and the candidates' phrases scored in one batch (a measurement, ivr/tools/evalrescore.py)."""
    from ivr.tools.evalrescore import print_summary, run

    result = run(settings, Path(report), part, bots=bots, phrases=phrases, progress=_progress)
    _report(result, print_summary, json_out, "per-row")


@eval_group.command("synth")
@click.option("--part", type=click.Choice(["dev", "test", "out_of_scope"]), default="dev",
              show_default=True, help="A part, or the out-of-scope set (dialog/evalsets).")
@click.option("--per-bot", type=int, default=4, show_default=True,
              help="Utterances per bot (paraphrases first); 0: the whole part.")
@click.option("--seed", type=int, default=8, show_default=True, help="Voice/speed/noise seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for audio.tsv and text.tsv (default <home>/evalsynth/<part>-<N>).")
@click.pass_obj
def eval_synth(settings: Settings, part: str, per_bot: int, seed: int,
               out_dir: str | None) -> None:
    """Render a part of the shipped spoken set (dialog/evalsets) at telephone quality, with
    several Kokoro voices and speeds and 15-30 dB noise; writes TSVs for `ivr eval intents`."""
    from dialog.evaluate import EVALSETS_DIR, pick, read_items
    from ivr.tools.evalsynth import render, write_tsvs

    items = pick(read_items(EVALSETS_DIR / f"{part}.tsv"), per_bot or None)
    out = Path(out_dir) if out_dir else settings.home / "evalsynth" / f"{part}-{per_bot}"
    t = time.monotonic()
    plans, paths = asyncio.run(render(items, settings, seed=seed, progress=_progress))
    write_tsvs(out, plans, paths)
    voices = sorted({p.voice for p in plans})
    click.echo(f"{len(plans)} utterances ({part}, {per_bot or 'all'} per bot, voices "
               f"{', '.join(voices)}) in {time.monotonic() - t:.0f} s")
    click.echo(f"audio: ivr eval intents {out / 'audio.tsv'}")
    click.echo(f"text:  ivr eval intents {out / 'text.tsv'}")


@eval_group.command("survey")
@click.option("--survey", default="satisfaction", show_default=True,
              help="A survey id (campaigns/surveys) or a YAML file.")
@click.option("--file", "answers_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Answers TSV (default campaigns/evalsets/answers.tsv).")
@click.option("--text-only", is_flag=True, help="Only the dialog's parsing of the texts.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write every verdict (text, with hints, without) here.")
@click.pass_obj
def eval_survey(settings: Settings, survey: str, answers_file: str | None, text_only: bool,
                json_out: str | None) -> None:
    """Spoken survey answers: understood as the survey would (consent, scores, yes/no, do not
    call, call back), as text and rendered at telephone quality through the live path, with
    each question's recogniser hints and without."""
    from asr.endpoint import EndpointSettings
    from campaigns.survey import SurveyError, load_survey
    from dialog.evaluate import Item
    from ivr.tools.evalsurvey import ANSWERS, hear_all, judge_heard, judge_texts, read_answers
    from ivr.tools.evalsynth import render

    try:
        spec = load_survey(survey)
        rows = read_answers(Path(answers_file) if answers_file else ANSWERS)
    except (SurveyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc

    async def go() -> dict[str, Any]:
        text = await judge_texts(spec, rows)
        click.echo("\n".join(text.lines(f"{len(rows)} answers as text:")))
        out: dict[str, Any] = {"text": text.as_json()}
        if text_only:
            return out
        items = [Item(f"{r.question}:{r.expected}", "answer", r.text) for r in rows]
        _plans, paths = await render(items, settings, progress=_progress)
        recognizer = _build(settings, None)
        endpoint = EndpointSettings.from_settings(settings.asr)
        try:
            for hints in (True, False):
                heard = await hear_all(spec, rows, paths, recognizer, endpoint,
                                       with_hints=hints)
                report = await judge_heard(spec, rows, heard)
                which = "with each question's hints" if hints else "no hints"
                click.echo("\n".join(report.lines(f"spoken ({_describe(settings)}), {which}:")))
                out["with_hints" if hints else "no_hints"] = report.as_json()
        finally:
            await recognizer.close()
        return out

    result = asyncio.run(go())
    click.echo("command: " + " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]]))
    if json_out:
        Path(json_out).write_text(json.dumps(result, ensure_ascii=False, indent=1),
                                  encoding="utf-8")


# ---- ivr bench speech -----------------------------------------------------------------------
@click.group("bench")
def bench_group() -> None:
    """Benchmarks on the full sets (they print their figures and the command)."""


@bench_group.command("speech")
@click.option("--per-bot", type=int, default=4, show_default=True,
              help="Utterances per bot and part (0: every sentence of the parts).")
@click.option("--part", "parts", type=click.Choice(["dev", "test"]), multiple=True,
              default=("dev", "test"), show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write every report (summary and rows) to this file.")
@click.pass_obj
def bench_speech(settings: Settings, per_bot: int, parts: tuple[str, ...],
                 json_out: str | None) -> None:
    """Right bot / wrong bot / clarify / no-match on the generated spoken set: each part as
    text (held out: its own sentences removed from the bots) and as telephone audio through
    the live path (rendered and cached by `ivr eval synth`)."""
    from dialog.evaluate import EVALSETS_DIR, pick, read_items
    from handoff.embeddings import intent_catalog
    from ivr.tools.evalintents import run_file
    from ivr.tools.evalsynth import render, write_tsvs

    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])
    catalog = intent_catalog(settings)  # once: with nlu.embedder it embeds every question
    reports: dict[str, Any] = {}
    for part in parts:
        items = pick(read_items(EVALSETS_DIR / f"{part}.tsv"), per_bot or None)
        out = settings.home / "evalsynth" / f"{part}-{per_bot}"
        plans, paths = asyncio.run(render(items, settings, progress=_progress))
        write_tsvs(out, plans, paths)
        for kind, holdout in (("text", True), ("audio", False)):
            _progress(f"{part} {kind}: {len(items)} rows")
            reports[f"{part}/{kind}"] = run_file(settings, out / f"{kind}.tsv",
                                                 holdout=holdout, progress=_progress,
                                                 catalog=catalog)
    def kind_of(name: str) -> str:
        return name.rsplit("/", 1)[-1]

    click.echo(f"$ {command}")
    click.echo(f"{'set':<16} {'rows':>5} {'right':>7} {'wrong':>7} {'clarify':>8} "
               f"{'no match':>9} {'ASR s/utt':>10}")
    for name, r in reports.items():
        asr = "-" if r["asr_mean_s"] is None else f"{r['asr_mean_s']:.2f}"
        rows = [(name, r)]
        if kind_of(name) == "audio" and r.get("held_out"):
            rows.append((f"{name}/held", r["held_out"]))
        for label, s in rows:
            click.echo(f"{label:<16} {s['n']:>5} {100 * (s['accuracy'] or 0):>6.1f}% "
                       f"{100 * (s['wrong_rate'] or 0):>6.1f}% "
                       f"{100 * (s['clarify_rate'] or 0):>7.1f}% "
                       f"{100 * (s['no_match_rate'] or 0):>8.1f}% {asr:>10}")
    if json_out:
        Path(json_out).write_text(json.dumps({"command": command, "reports": reports},
                                             ensure_ascii=False, indent=1), encoding="utf-8")


# ---- LLM handoff summaries (ivr/tools/evalsummaries.py) -----------------------------------
@eval_group.command("summaries")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the summary and every row to this file.")
@click.pass_obj
def eval_summaries(settings: Settings, file: str, json_out: str | None) -> None:
    """Score the LLM summaries of settings.llm's endpoint over recorded handoffs (JSONL FILE):
    sections present, length, digits leaked, fallback rate, latency."""
    from ivr.tools.evalsummaries import EvalFileError, check_configured, load_cases, print_report
    from ivr.tools.evalsummaries import run_cases as run_summaries

    try:
        check_configured(settings.llm)
        cases = load_cases(Path(file))
    except EvalFileError as exc:
        raise click.ClickException(str(exc)) from exc
    report = asyncio.run(run_summaries(settings.llm, cases, progress=_progress))
    _report(report, print_report, json_out, "per-row")
