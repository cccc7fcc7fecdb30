"""The LightGBM re-ranker: deterministic training, text model persisted without pickle, bad models refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xinglin.ingest.coding.coder import (
    FEATURES,
    MODEL_FORMAT,
    IndexFormatError,
    LearnedModel,
    load_model,
    pack_strs,
    predict_trees,
)
from xinglin.ingest.coding.codeset import Concept
from xinglin.ingest.coding.train import TREES, cross_fitted_features, fit_trees, prf

SMALL = {"rounds": 20, "seed": 13, "learning_rate": 0.3, "num_leaves": 4, "min_data_in_leaf": 5}


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    x = rng.rand(400, len(FEATURES))
    return x, (x[:, 0] + 0.5 * x[:, 4] > 0.8).astype(float)


def _model(ranker: str) -> LearnedModel:
    return LearnedModel(
        targets=[],
        prior=np.zeros(0, np.int32),
        pt_keys=[],
        pt_count=np.zeros(0, np.int32),
        pt_offsets=np.zeros(1, np.int64),
        pt_targets=np.zeros(0, np.int32),
        pt_target_counts=np.zeros(0, np.int32),
        rule_a=[],
        rule_b=[],
        rule_count=np.zeros(0, np.int32),
        rule_prec=np.zeros(0, np.float32),
        chapters={},
        ranker=ranker,
        threshold=0.35,
        meta={},
    )


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
    assert np.round(predict_trees(_model(text), _queries()), 4).tolist() == [4.6868, -5.5229, -2.2112]


def test_untrained_model_scores_zero() -> None:
    assert predict_trees(_model(""), _queries()).tolist() == [0.0, 0.0, 0.0]
    assert predict_trees(_model(""), np.zeros((0, len(FEATURES)))).tolist() == []


def test_ranker_survives_save_and_load(tmp_path: Path) -> None:
    x, y = _data()
    m = _model(fit_trees(x, y, **SMALL))
    m.save(tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.ranker == m.ranker
    assert back.meta["format"] == MODEL_FORMAT == "xinglin-dx-model/2"
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
    assert m.meta["pairs"] == 6000


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
