"""Diagnosis coding on CHIP-CDN: ours vs a plain TF-IDF baseline, on a held-out split. Prints JSON.

    .venv/bin/python benchmarks/code_dx_eval.py [--holdout 0.2] [--seed 13]

The pairs are split with a seeded shuffle (the same split as ``train.py --holdout``): the model is trained on
80 % (tables, rules, two-stage LightGBM re-ranker; settings chosen by 3-fold CV on that part only) and scored on
the held-out 20 %, which nothing was tuned on. F1 is micro F1 over (text, standard name) pairs, a predicted name
counting as correct when it is in the gold set; gold ``O`` (no code) and gold names missing from the list stay in
the denominator. Latency is per string, one thread, after warm-up; peak RSS of serving is measured in a fresh
process that only loads the dumped index and codes the held-out texts (training needs more memory).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xinglin.ingest.coding.coder import DiagnosisCoder
from xinglin.ingest.coding.codeset import read_code_set
from xinglin.ingest.coding.train import SEED, load_pairs, prf, split_holdout, train

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_SERVE = """
import json, sys, time
from xinglin.ingest.coding.coder import DiagnosisCoder
t0 = time.perf_counter()
coder = DiagnosisCoder.load(sys.argv[1])
load_s = time.perf_counter() - t0
for line in open(sys.argv[2], encoding="utf-8"):
    coder.code(json.loads(line)["text"], top_k=1)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(json.dumps({"load_s": load_s, "peak_rss_mb": hwm / 1024}))
"""


def baseline(coder: DiagnosisCoder, text: str, per_segment: bool) -> list[str]:
    """Plain character uni+bigram TF-IDF: the nearest name of the whole text (or of each explicit segment)."""
    t, segs = coder.prepare(text)
    out = []
    for q in (segs or [t]) if per_segment else [t]:
        sc = (coder._query(q) @ coder.xt).toarray().ravel()
        out.append(coder.names[int(np.argmax(sc))])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=str(SHARED / "chip-cdn" / "CHIP-CDN_train.json"))
    ap.add_argument("--codes", default=str(SHARED / "icd10-cn" / "icd10-beijing-clinical-v601.csv"))
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    pairs = load_pairs(args.pairs)
    concepts = read_code_set(args.codes)
    tune, held = split_holdout(pairs, args.holdout, args.seed)
    t0 = time.perf_counter()
    model = train(tune, concepts, seed=args.seed, log=log)
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    coder = DiagnosisCoder.build(concepts, model=model)
    build_s = time.perf_counter() - t0

    gold = [g for _, g in held]
    texts = [t for t, _ in held]
    for t in texts[:50]:  # warm-up
        coder.code(t, top_k=1)
    lat = []
    pred = []
    for t in texts:
        s = time.perf_counter()
        pred.append([d.name for d in coder.code(t, top_k=1)])
        lat.append((time.perf_counter() - s) * 1000)
    ours = prf(pred, gold)
    base_whole = prf([baseline(coder, t, False) for t in texts], gold)
    base_seg = prf([baseline(coder, t, True) for t in texts], gold)

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "v601.dx-index.npz"
        t0 = time.perf_counter()
        coder.dump(index)
        dump_s = time.perf_counter() - t0
        size_mb = index.stat().st_size / 1e6
        reloaded = DiagnosisCoder.load(index)
        same = all([d.to_dict() for d in reloaded.code(t)] == [d.to_dict() for d in coder.code(t)] for t in texts[:200])
        lines = Path(tmp) / "held.jsonl"
        lines.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
        serve = json.loads(subprocess.run([sys.executable, "-c", _SERVE, str(index), str(lines)], check=True,
                                          capture_output=True, text=True).stdout)  # fmt: skip

    def r(d: dict[str, float]) -> dict[str, float]:
        return {k: round(v * 100, 2) for k, v in d.items()}

    print(
        json.dumps(
            {
                "evaluation": f"held-out split: {len(held)} of {len(pairs)} CHIP-CDN training pairs "
                f"(seed {args.seed}), model trained on the other {len(tune)}; never tuned on",
                "ours": r(ours),
                "baseline_tfidf_nearest_name": r(base_whole),
                "baseline_tfidf_nearest_name_per_segment": r(base_seg),
                "latency_ms": {
                    "p50": round(float(np.percentile(lat, 50)), 2),
                    "p99": round(float(np.percentile(lat, 99)), 2),
                    "max": round(float(np.max(lat)), 2),
                },
                "concepts": len(concepts),
                "index_build_s": round(build_s, 2),
                "index_dump_s": round(dump_s, 2),
                "index_load_s": round(serve["load_s"], 2),
                "index_size_mb": round(size_mb, 2),
                "dump_load_identical": same,
                "peak_rss_mb_serving": round(serve["peak_rss_mb"], 1),
                "peak_rss_mb_training": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "train_s": round(train_s, 1),
                "python": platform.python_version(),
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
