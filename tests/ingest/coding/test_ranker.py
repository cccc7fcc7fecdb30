"""The LightGBM re-ranker: deterministic training, text model persisted without pickle, bad models refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xinglin.ingest.coding.coder import (
    CONTEXT,
    FEATURES,
    MODEL_FORMAT,
    DiagnosisCoder,
    IndexFormatError,
    LearnedModel,
    context_features,
    load_model,
    pack_strs,
    predict_trees,
    rerank,
)
from xinglin.ingest.coding.codeset import Concept
from xinglin.ingest.coding.train import TREES, TREES2, cross_fitted_features, fit_trees, prf

SMALL = {"rounds": 20, "seed": 13, "learning_rate": 0.3, "num_leaves": 4, "min_data_in_leaf": 5}


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    x = rng.rand(400, len(FEATURES))
    return x, (x[:, 0] + 0.5 * x[:, 4] > 0.8).astype(float)


def _model(ranker: str) -> LearnedModel:
    model = LearnedModel.empty(threshold=0.35)
    model.ranker = ranker
    return model


def _queries() -> np.ndarray:
    q = np.zeros((3, len(FEATURES)))
    q[0, 0] = 0.9
    q[1, 0] = 0.1
    q[2, [0, 4]] = 0.5
    return q


def test_fit_is_deterministic_and_scores_exactly() -> None:
    x, y = _data()
    text = fit_trees(x, y, **SMALL)
    assert text == fit_trees(x, y, **SMALL)
    assert np.round(predict_trees(_model(text), _queries()), 4).tolist() == [3.9937, -5.3181, -1.0541]


def test_untrained_model_scores_zero() -> None:
    assert predict_trees(_model(""), _queries()).tolist() == [0.0, 0.0, 0.0]
    assert predict_trees(_model(""), np.zeros((0, len(FEATURES)))).tolist() == []


def test_ranker_survives_save_and_load(tmp_path: Path) -> None:
    x, y = _data()
    m = _model(fit_trees(x, y, **SMALL))
    m.save(tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.ranker == m.ranker
    assert back.meta["format"] == MODEL_FORMAT == "xinglin-dx-model/3"
    assert predict_trees(back, _queries()).tolist() == predict_trees(m, _queries()).tolist()


def test_bad_rankers_are_refused(tmp_path: Path) -> None:
    x, y = _data()
    arrays = _model(fit_trees(x, y, **SMALL)).arrays()
    arrays["model_ranker"] = pack_strs(["tree\nnot a model"])
    np.savez(tmp_path / "junk.npz", **arrays)
    with pytest.raises(IndexFormatError, match="not a valid diagnosis-coding model"):
        load_model(tmp_path / "junk.npz")
    # a model over another feature layout
    arrays["model_ranker"] = pack_strs([fit_trees(x[:, :5], y, **SMALL)])
    np.savez(tmp_path / "other.npz", **arrays)
    with pytest.raises(IndexFormatError, match="another feature layout"):
        load_model(tmp_path / "other.npz")


def test_shipped_model_is_a_trained_ranker() -> None:
    m = load_model()
    booster = m.get_booster()
    assert booster.num_feature() == len(FEATURES)
    assert booster.num_trees() == TREES["rounds"]
    assert m.get_booster2().num_feature() == len(FEATURES) + len(CONTEXT)
    assert m.get_booster2().num_trees() == TREES2["rounds"]
    assert m.meta["pairs"] == 6000


def test_context_features_describe_the_competition() -> None:
    names = ["高血压", "高血压性心脏病", "肺炎", "细菌性肺炎"]
    cats = ["I10", "I11", "J18", "J15"]
    s = np.array([2.0, -1.0, 0.5, -9.0])
    ctx = context_features(names, cats, s)
    assert ctx.shape == (4, len(CONTEXT))
    col = {c: ctx[:, i].tolist() for i, c in enumerate(CONTEXT)}
    assert col["s1_rank"] == [0, 2, 1, 3]
    assert col["s1_top1"] == [2.0] * 4 and col["s1_top2"] == [0.5] * 4
    assert col["s1_gap_top1"] == [0.0, -3.0, -1.5, -11.0]
    assert col["s1_n_pos"] == [2.0] * 4  # sigmoid(2.0) and sigmoid(0.5) reach 0.35
    # 高血压 lies inside 高血压性心脏病 (a competitor with p > 0.05); 细菌性肺炎 is too weak to count
    assert col["s1_super"] == [-1.0, -10.0, -10.0, -10.0]
    assert col["s1_sub"] == [-10.0, 2.0, -10.0, -10.0]
    assert col["same_chapter_top1"] == [1.0, 1.0, 0.0, 0.0]
    assert col["same_category_top1"] == [1.0, 0.0, 0.0, 0.0]
    assert context_features([], [], np.zeros(0)).shape == (0, len(CONTEXT))


def test_second_stage_changes_scores_and_is_refused_on_another_layout(tmp_path: Path) -> None:
    x, y = _data()
    m = _model(fit_trees(x, y, **SMALL))
    rng = np.random.RandomState(1)
    x2 = np.hstack([x, rng.rand(len(x), len(CONTEXT))])
    y2 = (x2[:, len(FEATURES)] > 0.5).astype(float)  # the second stage follows a context column only
    m.ranker2 = fit_trees(x2, y2, **SMALL)
    q = _queries()
    one = rerank(_model(m.ranker), [(["a", "b", "c"], ["A00", "B00", "C00"], q)])[0]
    two = rerank(m, [(["a", "b", "c"], ["A00", "B00", "C00"], q)])[0]
    assert one.shape == two.shape == (3,) and not np.allclose(one, two)
    m.save(tmp_path / "two.npz")
    assert rerank(load_model(tmp_path / "two.npz"), [(["a", "b", "c"], ["A00", "B00", "C00"], q)])[0].tolist() == (
        two.tolist()
    )
    arrays = m.arrays()
    arrays["model_ranker2"] = pack_strs([fit_trees(x, y, **SMALL)])  # first-stage layout: refused
    np.savez(tmp_path / "other2.npz", **arrays)
    with pytest.raises(IndexFormatError, match="second-stage"):
        load_model(tmp_path / "other2.npz")


def test_loose_rewrite_reaches_site_plus_morphology() -> None:
    """脾|区|管状腺瘤 -> 脾良性肿瘤 (a gap between site and suffix) and 足|上皮样瘤 -> 足部良性肿瘤 (部 inserted)."""
    concepts = [Concept("D13.9", "脾良性肿瘤"), Concept("D36.7", "足部良性肿瘤"), Concept("D12.6", "结肠良性肿瘤")]
    m = LearnedModel.empty()
    m.targets, m.prior = ["结肠良性肿瘤"], np.ones(1, np.int32)
    m.rule_a, m.rule_b = ["管状腺瘤", "上皮样瘤"], ["良性肿瘤", "良性肿瘤"]
    m.rule_count, m.rule_prec = np.array([5, 3], np.int32), np.array([0.8, 0.6], np.float32)
    coder = DiagnosisCoder(concepts, m)
    loose = FEATURES.index("rw_loose")
    exact = FEATURES.index("rw_p")

    def rw(text: str) -> dict[str, tuple[float, float]]:
        t, segs = coder.prepare(text)
        gl, fx = coder.candidates(t, segs)
        return {coder.names[g]: (round(fx[i, exact], 2), round(fx[i, loose], 2)) for i, g in enumerate(gl)}

    assert rw("结肠管状腺瘤")["结肠良性肿瘤"] == (0.8, 0.0)
    assert rw("脾区管状腺瘤")["脾良性肿瘤"] == (0.0, 0.8)
    assert rw("右足上皮样瘤")["足部良性肿瘤"] == (0.0, 0.6)


def test_prf_counts_pairs() -> None:
    out = prf([["高血压", "冠心病"], ["肺炎"], []], [["高血压"], ["肺炎", "哮喘"], ["O"]])
    assert out == pytest.approx({"f1": 4 / 7, "precision": 2 / 3, "recall": 0.5})


def test_cross_fitted_features_never_count_the_text_itself() -> None:
    """Each part is featurised with tables from the other parts: 冠心病 is backed by the other three pairs
    (3 / (3 + 0.5)), the only 肺部感染 pair finds 肺炎 by TF-IDF alone, with no phrase-table support."""
    concepts = [Concept("I10", "高血压"), Concept("I25.1", "冠状动脉粥样硬化性心脏病"), Concept("J18", "肺炎")]
    pairs = [("冠心病", ["冠状动脉粥样硬化性心脏病"])] * 4 + [("肺部感染", ["肺炎"])]
    out = cross_fitted_features(pairs, concepts, parts=5)
    pt = FEATURES.index("pt")
    assert [(gl, np.round(x[:, pt], 4).tolist(), y.tolist()) for gl, x, y in out] == [
        ([1], [0.8571], [1.0]),
        ([1], [0.8571], [1.0]),
        ([1], [0.8571], [1.0]),
        ([1], [0.8571], [1.0]),
        ([2], [0.0], [1.0]),
    ]
