"""The trained layer (dialog.nlu.classifier): calibrated probabilities, kept on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dialog.nlu import classifier as C

EXAMPLES = [
    ("balance", t) for t in ("查余额", "卡里还有多少钱", "帮我看看余额", "我的卡还剩多少钱")
] + [
    ("loss", t) for t in ("卡丢了", "我要挂失", "加油卡被偷了", "卡找不到了")
] + [
    ("invoice", t) for t in ("开发票", "发票怎么开", "我要开票", "加油的票怎么开")
]


class Embed:
    """A tiny embedder with the attributes the real one has (name, cache_dir)."""

    vocab = "余额钱挂失丢偷票发"

    def __init__(self, cache_dir: Path | None) -> None:
        self.name = "test"
        self.cache_dir = cache_dir
        self.calls = 0

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [[float(ch in t) for ch in self.vocab] for t in texts]


def test_probabilities_are_calibrated_and_sum_to_one() -> None:
    clf = C.train_classifier(EXAMPLES)
    assert clf is not None and clf.temperature > 0
    p = clf.proba("卡丢了要挂失")
    assert max(p, key=p.__getitem__) == "loss" and abs(sum(p.values()) - 1) < 1e-9
    assert C.train_classifier(EXAMPLES) is clf  # same examples: the same classifier
    assert C.train_classifier([("a", "x"), ("a", "y")]) is None  # one intent: nothing to learn


def test_a_trained_layer_is_kept_on_disk_and_loaded_back(tmp_path: Path) -> None:
    first = Embed(tmp_path)
    clf = C.train_classifier(EXAMPLES, embedder=first)
    assert clf is not None and len(list(tmp_path.glob("classifier-*.npz"))) == 1
    C._cache.clear()  # another process: nothing in memory
    again = Embed(tmp_path)
    loaded = C.train_classifier(EXAMPLES, embedder=again)
    assert loaded is not None and loaded is not clf
    assert again.calls == 0  # the questions were not embedded again, nothing was trained
    a, b = clf.proba("卡被偷了"), loaded.proba("卡被偷了")
    assert np.allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)])
    (tmp_path / next(tmp_path.glob("classifier-*.npz")).name).write_bytes(b"broken")
    C._cache.clear()
    assert C.train_classifier(EXAMPLES, embedder=Embed(tmp_path)) is not None  # trains again
