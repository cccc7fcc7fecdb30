"""The statistical safety check: it may only raise urgency and add red flags, never anything else."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xinglin.triage import assess, safety, train_safety
from xinglin.triage.engine import assess_rules_only
from xinglin.triage.models import RED_FLAG_CODES

PHRASES = [
    "胸口",
    "疼",
    "喘不上气",
    "叫不醒",
    "没反应",
    "吐血",
    "黑色的大便",
    "喝了",
    "农药",
    "不想活了",
    "没有",
    "以前",
    "孩子",
    "发烧",
    "头晕",
    "拉肚子",
    "白酒",
    "现在",
    "好多",
    "肚子",
    "，",
    "my chest hurts",
    "can't breathe",
    "咳嗽",
    "眼睛",
]


def _same_except_safety(text: str, **kw) -> None:
    full, rules = assess(text, **kw), assess_rules_only(text, **kw)
    assert full.level <= rules.level  # only raises
    assert full.department == rules.department  # never moves the clinic by itself
    assert full.escalate >= rules.escalate
    rule_flags = {f.code: f.evidence for f in rules.red_flags}
    full_flags = {f.code: f.evidence for f in full.red_flags}
    assert rule_flags.items() <= full_flags.items()  # keeps every rule flag, unchanged
    added = set(full_flags) - set(rule_flags)
    if added:
        assert full.escalate and full.level <= 2
        assert all(full_flags[c].startswith("模型") for c in added)
        assert "统计安全检查" in full.explanation
    else:
        assert full.level == rules.level


def test_model_loads_and_is_small() -> None:
    model = safety.get_model()
    assert model is not None
    assert set(model.codes) <= set(RED_FLAG_CODES) and "abnormal_vitals" not in model.codes
    assert safety.MODEL_PATH.stat().st_size < 5 * 1024 * 1024
    with np.load(safety.MODEL_PATH, allow_pickle=False) as z:  # plain arrays, no pickle
        assert int(z["version"]) == safety.FORMAT_VERSION
    assert ((model.thresholds > 0) & (model.thresholds < 1)).all()


def test_deterministic() -> None:
    text = "孩子喝了半瓶白酒现在睡着叫不动"
    assert assess(text).to_dict() == assess(text).to_dict()
    model = safety.get_model()
    assert model is not None
    toks = safety.tokens(text, None, None)
    assert np.array_equal(model.scores(toks)[0], model.scores(list(toks))[0])
    assert np.array_equal(safety.hash_tokens(["叫不醒"], 1 << 18), safety.hash_tokens(["叫不醒"], 1 << 18))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("孩子喝了半瓶白酒现在睡着叫不动", "altered_consciousness"),  # rules: nothing
        ("拉了好多黑色的大便", "hematemesis"),  # rules: nothing (melena said plainly)
    ],
)
def test_unseen_phrasings_raised(text: str, code: str) -> None:
    rules = assess_rules_only(text)
    assert code not in {f.code for f in rules.red_flags}
    result = assess(text)
    flag = next(f for f in result.red_flags if f.code == code)
    assert flag.evidence.startswith("模型：")
    assert result.escalate and result.level <= 2
    assert result.department == rules.department
    _same_except_safety(text)


@pytest.mark.parametrize(
    "text",
    [
        "我爸叫了半天都没反应，眼睛也睁不开",
        "胸口像压了块大石头，满头大汗",
        "以前中风过，现在来复查开药",
        "咳嗽两周了，有黄痰",
    ],
)
def test_rule_results_untouched(text: str) -> None:
    _same_except_safety(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(PHRASES) | st.text(max_size=4), max_size=8),
    age=st.none() | st.floats(min_value=0, max_value=100),
    pregnant=st.none() | st.booleans(),
)
def test_only_raises(parts: list[str], age: float | None, pregnant: bool | None) -> None:
    _same_except_safety("".join(parts), age=age, pregnant=pregnant)


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04 broken"])
def test_bad_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    bad = tmp_path / "safety_model.npz"
    bad.write_bytes(content)
    with pytest.raises(ValueError):
        safety.load_model(bad)
    monkeypatch.setattr(safety, "MODEL_PATH", bad)
    safety.clear_cache()
    try:
        assert safety.get_model() is None
        result = assess("拉了好多黑色的大便")
        assert "safety_model_unavailable" in result.warnings
        rules = assess_rules_only("拉了好多黑色的大便")
        assert (result.level, result.red_flags, result.department) == (rules.level, rules.red_flags, rules.department)
    finally:
        safety.clear_cache()


def test_weights_of_wrong_shape_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(
        path,
        version=np.int64(safety.FORMAT_VERSION),
        codes=np.array(["stroke"]),
        dim=np.int64(1 << 10),
        rows=np.array([1, 5000], dtype=np.int32),  # outside the dimension
        values=np.zeros((2, 1), dtype=np.float16),
        scale=np.float32(1),
        bias=np.zeros(1, dtype=np.float32),
        thresholds=np.array([0.5], dtype=np.float32),
    )
    with pytest.raises(ValueError):
        safety.load_model(path)
    assert safety.get_model(path) is None
    safety.clear_cache()
    assert safety.get_model() is not None


def test_missing_weights_file(tmp_path: Path) -> None:
    assert safety.get_model(tmp_path / "absent.npz") is None
    safety.clear_cache()


def test_training_is_reproducible() -> None:
    docs = [safety.tokens(t, None, None) for t in ["叫不醒", "没反应了", "咳嗽", "头疼", "喘不上气", "拉肚子"]]
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [0, 1], [0, 0]], dtype=np.float32)
    x = train_safety.Sparse(docs, dim=1 << 12)
    w1, b1 = train_safety.fit(x, y, epochs=20)
    w2, b2 = train_safety.fit(train_safety.Sparse(docs, dim=1 << 12), y, epochs=20)
    assert np.array_equal(w1, w2) and np.array_equal(b1, b2)
    p = train_safety.predict(x, w1, x.vocab, b1)
    assert p[0, 0] > p[2, 0] and p[4, 1] > p[3, 1]


def test_threshold_choice() -> None:
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 0, 0, 0])
    t = train_safety.choose_threshold(p, y, target=1.0)
    assert (p[y == 1] > t).all()
    capped = train_safety.choose_threshold(p, y, target=1.0, max_false_alarm=0.0)
    assert not (p[y == 0] > capped).any()


def test_threshold_when_the_rules_leave_no_positives_to_the_model() -> None:
    # six complaints with the flag (all caught by the rules), 1000 quiet ones without it
    rng = np.random.default_rng(0)
    p = np.concatenate([np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]), rng.uniform(0.0, 0.3, 1000)])
    y = np.concatenate([np.ones(6), np.zeros(1000)])
    quiet = np.concatenate([np.zeros(6, dtype=bool), np.ones(1000, dtype=bool)])
    args = argparse.Namespace(target_recall=0.98, max_false_alarm=0.005)
    t = train_safety._threshold(p, y, quiet, args)
    # no quiet positives: at most FALLBACK_FALSE_ALARM of the quiet complaints are flagged, and the threshold
    # is no longer the blind default of 0.5
    assert (p[quiet] > t).mean() <= train_safety.FALLBACK_FALSE_ALARM
    assert t < 0.4
    assert (p[:6] > t).all()
    neg = train_safety.choose_threshold(p, y, target=1.0, max_false_alarm=0.001, neg=p[quiet])
    assert neg == pytest.approx(t)
