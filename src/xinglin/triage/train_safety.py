"""Train the statistical safety check (``safety.py``) and write ``knowledge/safety_model.npz``.

    python -m xinglin.triage.train_safety [--data-dir benchmarks/data] [--out FILE] [--report FILE]

One logistic regression per red-flag code (pure NumPy, full-batch Adam, L2, zero start: the same data
gives the same file, bit for bit) over the hashed features of ``safety.tokens``. Thresholds come from
cross-validation grouped by labelled set (each set is held out in turn, so every probability used to
pick a threshold is from a model that never saw that set): per code, the highest threshold whose
out-of-fold recall is at least ``--target-recall``, raised where needed so that no more than
``--max-false-alarm`` of the complaints without that flag are flagged (0.98 recall for every code alone
would flag most complaints). Where the rules already catch nearly every flag of a code, the complaints the
model speaks on hold too few positives: its threshold is then set from all the positives, with false alarms
capped at ``FALLBACK_FALSE_ALARM`` of the quiet complaints. ``abnormal_vitals`` is not modelled: it comes from
measured numbers, which the rules read deterministically.

The CV figures (per code: recall and false alarms of the model alone, and recall of rules OR model) are
printed as JSON and written to ``--report``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from xinglin.triage import safety
from xinglin.triage.models import RED_FLAG_CODES

SETS = (
    "triage_eval",
    "triage_dev",
    "triage_eval_blind2",
    "triage_eval_blind3",
    "triage_eval_blind4",
    "triage_dev2",
    "triage_eval_blind5",
    "triage_eval_blind6",
)
CODES = tuple(c for c in RED_FLAG_CODES if c != "abnormal_vitals")
# Harmless neighbours of danger wording, trained as complaints without any red flag (their own CV group): the
# labelled sets hold few of them, and without them the model reads any cramp as a fit ("抽") and any itch after
# a food allergen as anaphylaxis. Families, not test sentences; the rules alone decide these complaints.
HARMLESS = (
    "半夜腿抽筋 疼醒",
    "脚抽筋了 一会就好",
    "游泳时小腿抽筋",
    "手指抽筋 伸不直",
    "腿肚子抽筋 早上起来还有点酸",
    "睡觉时腿抽了一下",
    "眼皮老是跳",
    "my calf cramped up at night",
    "leg cramps at night",
    "吃了虾 手上起了几个红点 有点痒 呼吸正常",
    "吃了芒果 嘴角有点痒 别的没事",
    "吃了海鲜 身上有点痒 不喘",
    "吃了螃蟹 胳膊上有几个小包 喘气正常",
    "被蚊子咬了 起了个包 很痒",
    "换了洗衣液 身上有点痒",
    "吃了花生 身上有点痒 没有别的不舒服",
    "had shrimp and now a bit itchy on my arms, breathing fine",
    "mild itchy rash after a new soap",
)

DIM = 1 << 18
SEED = 20240607
EPOCHS = 300
LR = 0.05
L2 = 1e-4
MAX_POS_WEIGHT = 8.0
# 0.98 CV recall per code needs thresholds that flag most complaints (15 codes add up), so the false
# alarms are capped per code; see the report for what that costs in recall.
MAX_FALSE_ALARM = 0.005
# Once the rules catch (nearly) every flag of a code in the training sets, the complaints where the model
# speaks hold too few positives to set its threshold from (fewer than MIN_QUIET_POSITIVES). The model's job
# is then the wording the rules do not know yet: the threshold comes from recall over all the positives,
# capped so that at most FALLBACK_FALSE_ALARM of the quiet complaints without the flag are flagged.
MIN_QUIET_POSITIVES = 5
FALLBACK_FALSE_ALARM = 0.001


def default_data_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "benchmarks" / "data"


def read_rows(data_dir: Path, sets: tuple[str, ...] = SETS) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in sets:
        for line in (data_dir / f"{name}.jsonl").read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("holdout"):  # kept back to check the rules and the model for over-fitting
                    continue
                row["_set"] = name
                rows.append(row)
    return rows


def featurise(rows: list[dict[str, Any]]) -> list[list[str]]:
    from xinglin.triage.engine import analyse, check_age, check_pregnant, prepare_text, safety_view
    from xinglin.triage.knowledge import load

    kb = load()
    out = []
    for r in rows:
        norm = prepare_text((r.get("text") or "")[: safety.MAX_CHARS * 2], kb)
        view = safety_view(norm, analyse(norm, kb), kb) if norm else norm
        out.append(safety.tokens(view, check_age(r.get("age")), check_pregnant(r.get("pregnant"))))
    return out


def labels(rows: list[dict[str, Any]], codes: tuple[str, ...] = CODES) -> np.ndarray:
    y = np.zeros((len(rows), len(codes)), dtype=np.float32)
    for i, r in enumerate(rows):
        for c in r.get("red_flags") or ():
            if c in codes:
                y[i, codes.index(c)] = 1.0
    return y


class Sparse:
    """Rows of hashed features as (bucket, value) runs, mapped to a compact vocabulary."""

    def __init__(self, docs: list[list[str]], dim: int = DIM):
        idx_parts, val_parts, ptr = [], [], [0]
        for toks in docs:
            b = np.unique(safety.hash_tokens(toks, dim))
            # duplicates after hashing count once per token, like the run-time sum over tokens
            counts = np.bincount(np.searchsorted(b, safety.hash_tokens(toks, dim)), minlength=len(b))
            idx_parts.append(b)
            val_parts.append(counts.astype(np.float32) / np.sqrt(max(len(toks), 1)))
            ptr.append(ptr[-1] + len(b))
        buckets = np.concatenate(idx_parts)
        self.vocab, self.col = np.unique(buckets, return_inverse=True)
        self.val = np.concatenate(val_parts)
        self.ptr = np.asarray(ptr)
        self.row = np.repeat(np.arange(len(docs)), np.diff(self.ptr))
        self.n = len(docs)
        order = np.argsort(self.col, kind="stable")
        self._order = order
        self._starts = np.flatnonzero(np.r_[True, np.diff(self.col[order]) != 0])
        self._cols = self.col[order][self._starts]

    def matmul(self, w: np.ndarray) -> np.ndarray:
        return np.add.reduceat(w[self.col] * self.val[:, None], self.ptr[:-1])

    def rmatmul(self, r: np.ndarray) -> np.ndarray:
        contrib = (r[self.row] * self.val[:, None])[self._order]
        g = np.zeros((len(self.vocab), r.shape[1]), dtype=np.float32)
        g[self._cols] = np.add.reduceat(contrib, self._starts)
        return g


def fit(x: Sparse, y: np.ndarray, epochs: int = EPOCHS, lr: float = LR, l2: float = L2) -> tuple[np.ndarray, ...]:
    """Weighted logistic regression per column of ``y``; returns (weights over x.vocab, bias)."""
    n, k = y.shape
    pos = y.sum(axis=0)
    pos_w = np.clip((n - pos) / np.maximum(pos, 1.0), 1.0, MAX_POS_WEIGHT).astype(np.float32)
    sw = np.where(y > 0, pos_w, 1.0).astype(np.float32)
    norm = sw.sum(axis=0)
    w = np.zeros((len(x.vocab), k), dtype=np.float32)
    b = np.log(np.maximum(pos, 0.5) / n).astype(np.float32)
    mw, vw = np.zeros_like(w), np.zeros_like(w)
    mb, vb = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, epochs + 1):
        z = x.matmul(w) + b
        p = 1.0 / (1.0 + np.exp(-z))
        r = (p - y) * sw / norm
        gw = x.rmatmul(r) + l2 * w
        gb = r.sum(axis=0)
        mw = beta1 * mw + (1 - beta1) * gw
        vw = beta2 * vw + (1 - beta2) * gw * gw
        mb = beta1 * mb + (1 - beta1) * gb
        vb = beta2 * vb + (1 - beta2) * gb * gb
        c1, c2 = 1 - beta1**t, 1 - beta2**t
        w -= lr * (mw / c1) / (np.sqrt(vw / c2) + eps)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
    return w, b


def predict(x: Sparse, vocab_w: np.ndarray, vocab: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Probabilities for rows of ``x`` under weights trained on another vocabulary."""
    pos = np.searchsorted(vocab, x.vocab)
    pos = np.minimum(pos, len(vocab) - 1)
    known = vocab[pos] == x.vocab
    w = np.zeros((len(x.vocab), vocab_w.shape[1]), dtype=np.float32)
    w[known] = vocab_w[pos[known]]
    return 1.0 / (1.0 + np.exp(-(x.matmul(w) + b)))


def choose_threshold(
    p: np.ndarray, y: np.ndarray, target: float, max_false_alarm: float = 1.0, neg: np.ndarray | None = None
) -> float:
    """The highest threshold (a probability strictly above it flags) reaching ``target`` recall, unless
    that flags more than ``max_false_alarm`` of the complaints without this flag (``neg``: their
    probabilities, by default those of ``p`` with ``y == 0``): then the threshold that keeps false alarms
    at that rate (recall is what it is, and reported)."""
    pos = np.sort(p[y > 0])
    if not len(pos):
        return 0.5
    allowed_misses = int(np.floor((1 - target) * len(pos) + 1e-9))
    t_recall = float(np.nextafter(pos[allowed_misses], 0.0))
    neg = p[y == 0] if neg is None else neg
    if max_false_alarm >= 1.0 or not len(neg):
        return t_recall
    t_alarm = float(np.quantile(neg, 1.0 - max_false_alarm, method="higher"))
    return max(t_recall, t_alarm)


def _threshold(p: np.ndarray, y: np.ndarray, quiet: np.ndarray, args: argparse.Namespace) -> float:
    """One code's threshold from out-of-fold probabilities ``p``; ``quiet``: complaints where the model speaks."""
    on_quiet = choose_threshold(p[quiet], y[quiet], args.target_recall, args.max_false_alarm)
    n_quiet_pos = int(y[quiet].sum())
    if n_quiet_pos >= MIN_QUIET_POSITIVES:
        return on_quiet
    fallback = choose_threshold(
        p, y, args.target_recall, min(args.max_false_alarm, FALLBACK_FALSE_ALARM), neg=p[quiet & (y == 0)]
    )
    # the few quiet positives there are still count: keep whichever threshold catches more
    return min(on_quiet, fallback) if n_quiet_pos else fallback


def rules_flags(rows: list[dict[str, Any]]) -> tuple[list[set[str]], list[int]]:
    from xinglin.triage.engine import assess_rules_only

    out, levels = [], []
    for r in rows:
        res = assess_rules_only(
            r.get("text") or "", age=r.get("age"), sex=r.get("sex"), pregnant=r.get("pregnant"), vitals=r.get("vitals")
        )
        out.append({f.code for f in res.red_flags})
        levels.append(res.level)
    return out, levels


def cross_validate(rows: list[dict[str, Any]], x_docs: list[list[str]], y: np.ndarray, args: argparse.Namespace):
    groups = np.array([r["_set"] for r in rows])
    oof = np.zeros_like(y)
    for held in dict.fromkeys(groups):
        tr, te = np.flatnonzero(groups != held), np.flatnonzero(groups == held)
        x_tr = Sparse([x_docs[i] for i in tr])
        w, b = fit(x_tr, y[tr], args.epochs)
        oof[te] = predict(Sparse([x_docs[i] for i in te]), w, x_tr.vocab, b)
        print(f"  fold {held}: trained on {len(tr)}, held out {len(te)}", file=sys.stderr)
    return oof, groups


def _rate(hits: np.ndarray) -> float | None:
    """Share of true values, or None for a group without any (the harmless wordings hold no flags)."""
    return round(float(hits.mean()), 4) if hits.size else None


def cv_report(rows, y, oof, groups, thresholds, rule_hits, quiet) -> dict[str, Any]:
    report: dict[str, Any] = {"per_code": {}, "per_fold": {}}
    levels = np.array([r.get("level") or 4 for r in rows])
    # as in the engine: the model speaks only where the rules raised no red flag and left level 3-4
    flagged = (oof > thresholds) & quiet[:, None]
    for j, code in enumerate(CODES):
        pos = y[:, j] > 0
        rules = np.array([code in h for h in rule_hits])
        added = flagged[:, j] & ~rules
        report["per_code"][code] = {
            "positives": int(pos.sum()),
            "threshold": round(float(thresholds[j]), 4),
            "model_recall": round(float((flagged[pos, j]).mean()), 4),
            "rules_recall": round(float(rules[pos].mean()), 4),
            "rules_or_model_recall": round(float((flagged[pos, j] | rules[pos]).mean()), 4),
            "model_false_alarm_rate": round(float(flagged[~pos, j].mean()), 4),
            "added_wrong_flags": int((added & ~pos).sum()),
        }
    for g in dict.fromkeys(groups):
        m = groups == g
        yy, ff = y[m] > 0, flagged[m]
        rh = np.array([[c in h for c in CODES] for h, k in zip(rule_hits, m, strict=True) if k])
        new_wrong_cases = ((ff & ~rh & ~yy).any(axis=1) & ~yy.any(axis=1)).sum()
        raised = (ff & ~rh).any(axis=1) & (levels[m] >= 3)
        report["per_fold"][g] = {
            "flags_expected": int(yy.sum()),
            "model_recall": _rate(ff[yy]),
            "rules_recall": _rate(rh[yy]),
            "rules_or_model_recall": _rate((ff | rh)[yy]),
            "cases_without_flags": int((~yy.any(axis=1)).sum()),
            "of_which_model_adds_a_flag": int(new_wrong_cases),
            "true_level_3_4_cases": int((levels[m] >= 3).sum()),
            "of_which_model_raises_to_2": int(raised.sum()),
        }
    yy = y > 0
    rh_all = np.array([[c in h for c in CODES] for h in rule_hits])
    report["overall"] = {
        "model_recall": round(float(flagged[yy].mean()), 4),
        "rules_recall": round(float(rh_all[yy].mean()), 4),
        "rules_or_model_recall": round(float((flagged | rh_all)[yy].mean()), 4),
        "cases_without_flags": int((~yy.any(axis=1)).sum()),
        "of_which_model_adds_a_flag": int(((flagged & ~rh_all).any(axis=1) & ~yy.any(axis=1)).sum()),
        "true_level_3_4_cases": int((levels >= 3).sum()),
        "of_which_model_raises_to_2": int(((flagged & ~rh_all).any(axis=1) & (levels >= 3)).sum()),
    }
    return report


def save(path: Path, vocab: np.ndarray, w: np.ndarray, b: np.ndarray, thresholds: np.ndarray) -> None:
    keep = np.abs(w).max(axis=1) >= 1e-3  # buckets that move no logit are left out
    np.savez_compressed(
        path,
        version=np.int64(safety.FORMAT_VERSION),
        codes=np.array(CODES),
        dim=np.int64(DIM),
        rows=vocab[keep].astype(np.int32),
        values=w[keep].astype(np.float16),
        scale=np.float32(1.0),
        bias=b.astype(np.float32),
        thresholds=thresholds.astype(np.float32),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=safety.MODEL_PATH)
    parser.add_argument("--report", type=Path, help="write the CV figures here as JSON")
    parser.add_argument("--target-recall", type=float, default=0.98, help="CV recall wanted per code")
    parser.add_argument(
        "--max-false-alarm",
        type=float,
        default=MAX_FALSE_ALARM,
        help="cap per code on the CV share of complaints without the flag that the model flags (1 = no cap)",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--no-cv", action="store_true", help="skip cross-validation (thresholds 0.5)")
    args = parser.parse_args(argv)
    np.random.seed(SEED)  # nothing is drawn at random today; kept so any future sampling is seeded

    rows = read_rows(args.data_dir)
    rows += [{"text": t, "red_flags": [], "level": 4, "_set": "harmless"} for t in HARMLESS]
    docs = featurise(rows)
    y = labels(rows)
    print(f"{len(rows)} complaints, {int(y.sum())} red flags over {len(CODES)} codes", file=sys.stderr)
    report: dict[str, Any] = {
        "n": len(rows),
        "sets": [*SETS, "harmless"],
        "target_recall": args.target_recall,
        "max_false_alarm": args.max_false_alarm,
    }
    if args.no_cv:
        thresholds = np.full(len(CODES), 0.5, dtype=np.float32)
    else:
        oof, groups = cross_validate(rows, docs, y, args)
        rule_hits, rule_levels = rules_flags(rows)
        # thresholds are chosen where the model speaks: complaints on which the rules raised no flag
        quiet = np.array([not h and lv >= 3 for h, lv in zip(rule_hits, rule_levels, strict=True)])
        thresholds = np.array(
            [_threshold(oof[:, j], y[:, j], quiet, args) for j in range(len(CODES))], dtype=np.float32
        )
        report.update(cv_report(rows, y, oof, groups, thresholds, rule_hits, quiet))
    x = Sparse(docs)
    w, b = fit(x, y, args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(args.out, x.vocab, w, b, thresholds)
    report["model_bytes"] = args.out.stat().st_size
    text = json.dumps(report, ensure_ascii=False, indent=2)
    if args.report:
        args.report.write_text(text + "\n", "utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
