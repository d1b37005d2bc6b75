"""PaddleSpeech TTS: model folder checks and call options (no framework needed), the factory's
clear errors and espeak-ng fallback, and the synthesis contract when paddlespeech is installed
and the operator configured its model folders (``tts.paddlespeech_am_path`` /
``tts.paddlespeech_voc_path``, e.g. ``IVR_TTS__PADDLESPEECH_AM_PATH``); otherwise it skips."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from ivr.core.config import Settings, TTSSettings
from tts.base import TTSUnavailable
from tts.factory import build_synthesizer
from tts.paddlespeech import executor_kwargs, model_files


def _am(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("default.yaml", "snapshot_iter_76000.pdz", "speech_stats.npy",
                 "phone_id_map.txt"):
        (root / name).write_bytes(b"\0")
    return root


def _voc(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("default.yaml", "snapshot_iter_2500000.pdz", "feats_stats.npy"):
        (root / name).write_bytes(b"\0")
    return root


def test_model_folders_and_call_options(tmp_path: Path) -> None:
    with pytest.raises(TTSUnavailable, match="paddlespeech_am_path"):
        model_files(None, None)
    am, voc = _am(tmp_path / "fastspeech2_csmsc"), _voc(tmp_path / "hifigan_csmsc")
    files = model_files(am, voc)
    assert files == {
        "am_config": str(am / "default.yaml"), "am_ckpt": str(am / "snapshot_iter_76000.pdz"),
        "am_stat": str(am / "speech_stats.npy"), "phones_dict": str(am / "phone_id_map.txt"),
        "voc_config": str(voc / "default.yaml"),
        "voc_ckpt": str(voc / "snapshot_iter_2500000.pdz"),
        "voc_stat": str(voc / "feats_stats.npy"),
    }  # fmt: skip
    (am / "tone_id_map.txt").write_bytes(b"\0")  # speedyspeech
    assert model_files(am, voc)["tones_dict"] == str(am / "tone_id_map.txt")
    (voc / "snapshot_iter_5000.pdz").write_bytes(b"\0")
    with pytest.raises(TTSUnavailable, match=r"one checkpoint \(\*\.pdz\)"):
        model_files(am, voc)
    with pytest.raises(TTSUnavailable, match="does not exist"):
        model_files(am, tmp_path / "missing")
    kw = executor_kwargs("您好。", tmp_path / "o.wav", am="fastspeech2_csmsc",
                         voc="hifigan_csmsc", files=files)
    assert kw["text"] == "您好。" and kw["output"] == str(tmp_path / "o.wav")
    assert kw["am"] == "fastspeech2_csmsc" and kw["voc"] == "hifigan_csmsc"
    assert kw["lang"] == "zh" and kw["device"] == "cpu" and kw["am_ckpt"] == files["am_ckpt"]


def test_factory_says_which_model_folder_is_missing() -> None:
    with pytest.raises(TTSUnavailable, match="paddlespeech_am_path"):
        build_synthesizer(TTSSettings(backend="paddlespeech", fallback="none"))


@pytest.mark.skipif(importlib.util.find_spec("paddlespeech") is not None,
                    reason="paddlespeech is installed: there is no missing package to name")
def test_factory_says_how_to_install_paddlespeech(tmp_path: Path) -> None:
    settings = TTSSettings(
        backend="paddlespeech", fallback="none",
        paddlespeech_am_path=_am(tmp_path / "am"), paddlespeech_voc_path=_voc(tmp_path / "v"),
    )  # fmt: skip
    with pytest.raises(TTSUnavailable, match=r"pip install -e '\.\[paddlespeech\]'"):
        build_synthesizer(settings)


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="no espeak-ng: nothing for the factory to fall back to")
def test_factory_falls_back_to_espeak() -> None:
    synth = build_synthesizer(TTSSettings(backend="paddlespeech"))  # no model folders
    assert synth.name == "espeak"


async def test_paddlespeech_synthesis_contract() -> None:
    if importlib.util.find_spec("paddlespeech") is None:
        pytest.skip("paddlespeech is not installed (pip install -e '.[paddlespeech]')")
    tts = Settings().tts
    if tts.paddlespeech_am_path is None or tts.paddlespeech_voc_path is None:
        pytest.skip("no PaddleSpeech TTS model folders configured (tts.paddlespeech_am_path, "
                    "tts.paddlespeech_voc_path)")
    synth = build_synthesizer(tts.model_copy(update={"backend": "paddlespeech",
                                                     "fallback": "none"}))
    try:
        assert synth.name == "paddlespeech"
        pcm = await synth.synthesize("您好，您的余额是一百二十八元五角。")
        assert len(pcm) % 2 == 0 and len(pcm) > 8000  # 8 kHz s16le, over half a second
        samples = np.frombuffer(pcm, dtype="<i2")
        assert np.abs(samples).max() > 1000
        chunks = [c async for c in synth.stream("您好。请问有什么可以帮您？")]
        assert len(chunks) >= 1 and all(len(c) % 2 == 0 for c in chunks)
    finally:
        await synth.close()
