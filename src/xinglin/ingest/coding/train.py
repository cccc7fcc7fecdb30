"""Derive the diagnosis coder's learned data from training pairs (reproducible, seeded).

    python -m xinglin.ingest.coding.train \\
        --pairs ../shared/data/chip-cdn/CHIP-CDN_train.json \\
        --codes ../shared/data/icd10-cn/icd10-beijing-clinical-v601.csv \\
        --out src/xinglin/ingest/coding/data/dx_model.npz

Pairs are raw diagnosis texts with their standard names (CHIP-CDN: names joined by ``##``). The code list is
only needed to know which standard names exist; the output holds no codes, only standard names that occur as
answers in the pairs, with counts. What is derived:

* phrase table: every text fragment of 1..12 characters -> the standard names of the texts containing it,
  with counts (pruned to support >= 5 %, fragments with 3+ digit runs dropped: they are record numbers);
* suffix rewrite rules ``X + a -> X + b`` (结肠|腺癌 -> 结肠|恶性肿瘤) seen in >= 2 texts, with their precision;
* how often each name and each ICD chapter is an answer;
* the re-ranker: LightGBM gradient-boosted trees on cross-fitted features (each fifth of the pairs featurised
  with tables from the other four fifths, as new text would be), stored as LightGBM's text model;
* its second stage: the same rows plus context from first-stage scores of the text's other candidates, those
  scores out of fold (trees fitted without the text), so the second stage learns from honest first-stage scores.

``--cv 3`` reports 3-fold cross-validated F1 for a range of thresholds (how the shipped threshold was chosen);
``--holdout 0.2`` keeps 20 % of the pairs out and reports F1 on them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xinglin.ingest.coding.coder import (
    DEFAULT_MODEL,
    FEATURES,
    PT_MIN_P,
    DiagnosisCoder,
    LearnedModel,
    context_features,
    predict_trees,
    rerank,
)
from xinglin.ingest.coding.codeset import Concept, read_code_set
from xinglin.ingest.coding.text import compact

SEED = 13
PT_MAX_LEN = 12
RULE_A_MAX = 5
RULE_B_MAX = 8
RULE_MIN_COUNT = 2  # 3-fold CV, one stage with the loose rewrite: 3 texts 62.39, 2 texts 62.65
RULES_PER_SUFFIX = 20
# Chosen by 3-fold CV on the tuning split only (two stages: 0.3 63.12, 0.35 63.10, 0.25 62.85, 0.4 62.91)
THRESHOLD = 0.3
# Fold 1 of 3 on the tuning split, scored as new text: 31 leaves x 400 rounds 64.7, 63 x 800 64.6 (slower)
TREES = {
    "rounds": 400,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}
# Second stage (stacking): first-stage scores of the training rows out of fold (STACK_FOLDS parts of the texts).
# 3-fold CV on the tuning split: one stage 61.96, two stages 62.66 (threshold 0.3).
TREES2 = {**TREES, "rounds": 200}
STACK_FOLDS = 3
CROSS_FIT = 5  # parts for the re-ranker's training features
_RECORD_NO = re.compile(r"\d{3,}")

Pair = tuple[str, list[str]]


def load_pairs(path: str | Path) -> list[Pair]:
    """CHIP-CDN JSON (``[{"text", "normalized_result": "a##b"}]``): quotes around names or the whole list dropped."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: list[Pair] = []
    for row in data:
        golds = [g.strip().strip('"').strip() for g in str(row["normalized_result"]).strip().strip('"').split("##")]
        out.append((str(row["text"]), [g for g in golds if g]))
    return out


def split_holdout(pairs: Sequence[Pair], frac: float = 0.2, seed: int = SEED) -> tuple[list[Pair], list[Pair]]:
    """(tuning, held-out) with a seeded shuffle; file order kept inside each part."""
    idx = list(range(len(pairs)))
    random.Random(seed).shuffle(idx)
    cut = int(len(pairs) * frac)
    held = sorted(idx[:cut])
    tune = sorted(idx[cut:])
    return [pairs[i] for i in tune], [pairs[i] for i in held]


def fragments(t: str, max_len: int = PT_MAX_LEN) -> set[str]:
    return {t[i : i + ln] for i in range(len(t)) for ln in range(1, min(max_len, len(t) - i) + 1)}


# --------------------------------------------------------------------------------------------------------------
# tables


def _mine_rules(rows: Sequence[tuple[str, list[str]]], names: set[str]) -> Counter[tuple[str, str]]:
    """Count, per text, suffix pairs (a, b) with X+a in the text and X+b a gold name (a[0] != b[0])."""
    cnt: Counter[tuple[str, str]] = Counter()
    for t, golds in rows:
        seen: set[tuple[str, str]] = set()
        for g in golds:
            if g not in names:
                continue
            for m in range(1, len(g)):
                x, b = g[:m], g[m:]
                if len(b) > RULE_B_MAX:
                    continue
                i = t.find(x)
                while i >= 0:
                    j = i + m
                    for k in range(1, RULE_A_MAX + 1):
                        if j + k > len(t):
                            break
                        a = t[j : j + k]
                        if a[0] != b[0]:
                            seen.add((a, b))
                    i = t.find(x, i + 1)
        cnt.update(seen)
    return cnt


def build_tables(
    pairs: Sequence[Pair], concepts: Sequence[Concept]
) -> tuple[LearnedModel, list[tuple[str, list[str]]]]:
    """Phrase table, rules and priors (no trees yet) plus the compact (text, gold names) rows."""
    names = {compact(c.name) for c in concepts}
    rows = [(compact(t), [g for g in dict.fromkeys(compact(x) for x in golds) if g in names]) for t, golds in pairs]
    targets: dict[str, int] = {}
    prior: Counter[int] = Counter()
    cs: Counter[str] = Counter()
    csg: dict[str, Counter[int]] = defaultdict(Counter)
    for t, golds in rows:
        gids = [targets.setdefault(g, len(targets)) for g in golds]
        prior.update(gids)
        for s in fragments(t):
            if _RECORD_NO.search(s):
                continue
            cs[s] += 1
            if gids:
                csg[s].update(gids)
    keys: list[str] = []
    counts: list[int] = []
    offsets = [0]
    tg: list[int] = []
    tc: list[int] = []
    for s in sorted(csg):
        c = cs[s]
        items = sorted((g, n) for g, n in csg[s].items() if n / (c + 0.5) >= PT_MIN_P)
        if not items:
            continue
        keys.append(s)
        counts.append(c)
        for g, n in items:
            tg.append(g)
            tc.append(n)
        offsets.append(len(tg))
    rules = _mine_rules(rows, names)
    by_a: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (a, b), c in rules.items():
        if c >= RULE_MIN_COUNT:
            by_a[a].append((c, b))
    ra: list[str] = []
    rb: list[str] = []
    rc: list[int] = []
    for a in sorted(by_a):
        for c, b in sorted(by_a[a], key=lambda x: (-x[0], x[1]))[:RULES_PER_SUFFIX]:
            ra.append(a)
            rb.append(b)
            rc.append(c)
    code_of = {compact(c.name): c.code for c in concepts}
    chapters: Counter[str] = Counter()
    tnames = list(targets)
    for g, n in prior.items():
        chapters[code_of[tnames[g]][:1].upper()] += n
    model = LearnedModel(
        targets=tnames,
        prior=np.array([prior[i] for i in range(len(tnames))], dtype=np.int32),
        pt_keys=keys,
        pt_count=np.array(counts, dtype=np.int32),
        pt_offsets=np.array(offsets, dtype=np.int64),
        pt_targets=np.array(tg, dtype=np.int32),
        pt_target_counts=np.array(tc, dtype=np.int32),
        rule_a=ra,
        rule_b=rb,
        rule_count=np.array(rc, dtype=np.int32),
        rule_prec=np.zeros(len(ra), dtype=np.float32),
        chapters=dict(sorted(chapters.items())),
        ranker="",
        threshold=THRESHOLD,
        meta={"pt_max_len": PT_MAX_LEN, "pairs": len(pairs), "seed": SEED, "trees": TREES},
    )
    return model, rows


def _rule_precision(coder: DiagnosisCoder, rows: Sequence[tuple[str, list[str]]]) -> np.ndarray:
    """Share of the candidates each rule generates on the training texts that are gold ((hit + 0.1) / (n + 1))."""
    m = coder.model
    index = {(a, b): i for i, (a, b) in enumerate(zip(m.rule_a, m.rule_b, strict=True))}
    gen = np.zeros(len(index))
    hit = np.zeros(len(index))
    rules, prefixes, name_id = coder.rules, coder.prefixes, coder.name_id
    for t, golds in rows:
        gold = {name_id[g] for g in golds}
        seen: set[tuple[int, int]] = set()
        n = len(t)
        for j in range(1, n):
            for k in range(1, coder.rule_amax + 1):
                if j + k > n:
                    break
                a = t[j : j + k]
                for i in range(j - 1, max(-1, j - 11), -1):
                    x = t[i:j]
                    if x not in prefixes:
                        continue
                    for b, _, _ in rules.get(a, ()):
                        g = name_id.get(x + b)
                        if g is not None:
                            seen.add((index[(a, b)], g))
        for r, g in seen:
            gen[r] += 1
            hit[r] += g in gold
    return ((hit + 0.1) / (gen + 1)).astype(np.float32)


def features(
    coder: DiagnosisCoder, pairs: Sequence[Pair], rows: Sequence[tuple[str, list[str]]] | None = None
) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    """(candidate ids, features, labels) per pair; leave-one-out when ``rows`` (the tables' own rows) is given."""
    out = []
    for k, (text, golds) in enumerate(pairs):
        t, segs = coder.prepare(text)
        gold = {coder.name_id[g] for g in (compact(x) for x in golds) if g in coder.name_id}
        own = (gold, fragments(rows[k][0])) if rows is not None else None
        gl, x = coder.candidates(t, segs, own)
        out.append((gl, x, np.array([g in gold for g in gl], dtype=np.float64)))
    return out


# --------------------------------------------------------------------------------------------------------------
# gradient-boosted trees (LightGBM, logistic loss; one thread and a fixed seed: the same model every run)


def fit_trees(x: np.ndarray, y: np.ndarray, *, rounds: int, seed: int, **params: Any) -> str:
    """The re-ranker as LightGBM's text model."""
    import lightgbm

    cfg = {
        "objective": "binary",
        "verbose": -1,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        **params,
    }
    booster = lightgbm.train(cfg, lightgbm.Dataset(x, y, free_raw_data=True), num_boost_round=rounds)
    return str(booster.model_to_string())


def _stack(feats: Sequence[tuple[list[int], np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    xs = [x for gl, x, _ in feats if gl]
    ys = [y for gl, _, y in feats if gl]
    return np.vstack(xs), np.concatenate(ys)


def _set_trees(model: LearnedModel, ranker: str, ranker2: str = "") -> None:
    model.ranker, model.booster = ranker, None
    model.ranker2, model.booster2 = ranker2, None


def fit_rankers(
    coder: DiagnosisCoder, feats: Sequence[tuple[list[int], np.ndarray, np.ndarray]], *, seed: int = SEED
) -> tuple[str, str]:
    """Both stages on cross-fitted candidate rows: the first on all rows; the second on the rows plus
    ``CONTEXT`` computed from first-stage scores that each text gets from trees fitted without it."""
    x, y = _stack(feats)
    r1 = fit_trees(x, y, seed=seed, **TREES)
    live = [i for i, (gl, _, _) in enumerate(feats) if gl]
    oof: dict[int, np.ndarray] = {}
    for part in np.array_split(np.random.RandomState(seed + 1).permutation(len(live)), STACK_FOLDS):
        own = {live[i] for i in part.tolist()}
        xp, yp = _stack([f for i, f in enumerate(feats) if i not in own])
        m = LearnedModel.empty()
        m.ranker = fit_trees(xp, yp, seed=seed, **TREES)
        for i in own:
            oof[i] = predict_trees(m, feats[i][1])
    x2 = np.vstack(
        [np.hstack([feats[i][1], context_features(*coder.block(feats[i][0], feats[i][1])[:2], oof[i])]) for i in live]
    )
    return r1, fit_trees(x2, y, seed=seed, **TREES2)


def _tables(pairs: Sequence[Pair], concepts: Sequence[Concept]) -> DiagnosisCoder:
    """A coder whose learned tables (no trees yet) come from ``pairs``."""
    model, rows = build_tables(pairs, concepts)
    coder = DiagnosisCoder(list(concepts), model)
    model.rule_prec = _rule_precision(coder, rows)
    coder._resolve_model()
    return coder


def cross_fitted_features(
    pairs: Sequence[Pair], concepts: Sequence[Concept], *, parts: int = CROSS_FIT, seed: int = SEED
) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    """The re-ranker's training rows as the coder sees new text: each part's features come from tables built on
    the other parts, so no count, rule or rule precision includes the text itself (leave-one-out features did:
    the rules and their precision kept the text's own contribution, which flexible trees learned to exploit)."""
    order = np.random.RandomState(seed).permutation(len(pairs))
    out: list[Any] = [None] * len(pairs)
    for idx in np.array_split(order, parts):
        own = set(idx.tolist())
        coder = _tables([p for i, p in enumerate(pairs) if i not in own], concepts)
        for i, f in zip(idx.tolist(), features(coder, [pairs[i] for i in idx.tolist()]), strict=True):
            out[i] = f
    return out


def train(pairs: Sequence[Pair], concepts: Sequence[Concept], *, seed: int = SEED, log: Any = None) -> LearnedModel:
    """Tables from all ``pairs``, then trees on cross-fitted features (see ``cross_fitted_features``)."""
    say = log or (lambda *_: None)
    t0 = time.perf_counter()
    model = _tables(pairs, concepts).model
    say(f"tables: {len(model.pt_keys)} fragments, {len(model.rule_a)} rules ({time.perf_counter() - t0:.1f}s)")
    feats = cross_fitted_features(pairs, concepts, seed=seed)
    x, _ = _stack(feats)
    say(f"features: {x.shape[0]} candidates x {x.shape[1]} ({time.perf_counter() - t0:.1f}s)")
    coder = DiagnosisCoder(list(concepts), model)
    _set_trees(model, *fit_rankers(coder, feats, seed=seed))
    model.meta.update(
        {"seed": seed, "candidates": int(x.shape[0]), "cross_fit": CROSS_FIT, "trees2": TREES2, "stack": STACK_FOLDS}
    )
    say(f"trees: {TREES['rounds']} + {TREES2['rounds']} ({time.perf_counter() - t0:.1f}s)")
    return model


# --------------------------------------------------------------------------------------------------------------
# evaluation


def prf(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro P/R/F1 over (text, standard name) pairs, names compared in their compact form."""
    tp = fp = fn = 0
    for p, g in zip(predicted, gold, strict=True):
        ps = {compact(x) for x in p}
        gs = {compact(x) for x in g}
        tp += len(ps & gs)
        fp += len(ps - gs)
        fn += len(gs - ps)
    prec = tp / max(1, tp + fp)
    rec = tp / max(1, tp + fn)
    return {"f1": 2 * prec * rec / max(1e-12, prec + rec), "precision": prec, "recall": rec}


def cross_validate(
    pairs: Sequence[Pair], concepts: Sequence[Concept], *, folds: int = 5, seed: int = SEED, log: Any = None
) -> dict[str, Any]:
    """Each fold scored exactly as new text: tables and trees from the other folds only (trees on cross-fitted
    features), the fold's features from those tables. Returns mean F1 per threshold."""
    say = log or (lambda *_: None)
    order = np.random.RandomState(seed).permutation(len(pairs))
    parts = np.array_split(order, folds)
    grid = [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    scores: dict[float, list[float]] = {th: [] for th in grid}
    for k in range(folds):
        fit = [pairs[i] for i in sorted(np.concatenate([parts[j] for j in range(folds) if j != k]).tolist())]
        val = [pairs[i] for i in sorted(parts[k].tolist())]
        coder = _tables(fit, concepts)
        _set_trees(coder.model, *fit_rankers(coder, cross_fitted_features(fit, concepts, seed=seed), seed=seed))
        feats = features(coder, val)
        probs = _probabilities(coder, feats)
        for th in grid:
            pred = [_decode(coder, gl, p, th) for (gl, _, _), p in zip(feats, probs, strict=True)]
            scores[th].append(prf(pred, [g for _, g in val])["f1"])
        say(f"fold {k + 1}/{folds}: " + ", ".join(f"{th}: {scores[th][-1]:.4f}" for th in grid))
    return {str(th): float(np.mean(v)) for th, v in scores.items()}


def _probabilities(coder: DiagnosisCoder, feats: Sequence[tuple[list[int], np.ndarray, Any]]) -> list[np.ndarray]:
    """Re-ranker probabilities (both stages) for many texts' candidate blocks."""
    return rerank(coder.model, [coder.block(gl, x) for gl, x, _ in feats])


def _decode(coder: DiagnosisCoder, gl: list[int], p: np.ndarray, threshold: float) -> list[str]:
    """What ``DiagnosisCoder.code(top_k=1)`` returns, from precomputed probabilities."""
    if not gl:
        return []
    order = np.argsort(-p, kind="stable")
    names = [coder.names[gl[i]] for i in order[:20] if p[i] >= threshold]
    if not names:
        return [coder.names[gl[order[0]]]]
    kept: list[str] = []
    for nm in names:
        if len(nm) >= 3 and any(nm in k and len(k) > len(nm) for k in kept):
            continue
        kept.append(nm)
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", required=True, help="CHIP-CDN style training JSON")
    ap.add_argument("--codes", required=True, help="code list (.xlsx or code,name CSV) the answers come from")
    ap.add_argument("--out", default=str(DEFAULT_MODEL), help="where to write the model (.npz)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--holdout", type=float, default=0.0, help="keep this share out and report F1 on it")
    ap.add_argument("--cv", type=int, default=0, help="report k-fold CV F1 per threshold (on the non-held-out part)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    pairs = load_pairs(args.pairs)
    concepts = read_code_set(args.codes)
    tune, held = split_holdout(pairs, args.holdout, args.seed) if args.holdout else (pairs, [])
    if args.cv:
        print(
            json.dumps({"cv_f1_by_threshold": cross_validate(tune, concepts, folds=args.cv, seed=args.seed, log=log)})
        )
        return 0
    model = train(tune, concepts, seed=args.seed, log=log)
    model.save(args.out)
    log(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")
    if held:
        coder = DiagnosisCoder(concepts, model)
        pred = [[d.name for d in coder.code(t, top_k=1)] for t, _ in held]
        print(json.dumps({"holdout": len(held), **prf(pred, [g for _, g in held])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["FEATURES", "cross_validate", "load_pairs", "prf", "split_holdout", "train"]
