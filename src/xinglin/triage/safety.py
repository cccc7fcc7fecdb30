"""Statistical safety check: a small multi-label classifier that may only RAISE urgency.

The rules (red_flags.yaml) stay the source of every decision about the clinic; this layer catches red
flags said in words the rules do not know yet ("叫他没反应", "喘得说不了整句话"). It predicts, for each
red-flag code, the probability that the complaint carries that flag, from hashed character 1–4-grams of
the engine's normalised text (Traditional → Simplified, width, case, typos) plus age-bucket and
pregnancy tokens. A probability above the code's threshold (chosen by cross-validation for very high
recall, see ``train_safety.py``) adds the flag when the rules did not; the engine then escalates and
sets the level to at most 2. It never lowers a level, removes a flag or changes the clinic.

Weights are package data (``knowledge/safety_model.npz``, NumPy arrays only, no pickle), loaded lazily
once per process. A missing or corrupt file disables the layer (logged, and the result carries the
warning ``safety_model_unavailable``); the rules still run.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xinglin.triage import text as textmod

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).resolve().parent / "knowledge" / "safety_model.npz"
FORMAT_VERSION = 1
NGRAM_MIN, NGRAM_MAX = 1, 4
MAX_CHARS = 2_000  # n-grams of longer text are taken from its first MAX_CHARS characters
_FEATURE_PREFIX = "\x00"
_NOT_WORD = re.compile(r"[\W_]")  # marks the non-text tokens (age, pregnancy): never shown as evidence


def age_bucket(age: float | None) -> str:
    if age is None:
        return "age:none"
    if age < 0.25:
        return "age:<3m"
    if age < 1:
        return "age:<1y"
    if age < 14:
        return "age:child"
    if age < 65:
        return "age:adult"
    return "age:elderly"


def tokens(norm: str, age: float | None, pregnant: bool | None) -> list[str]:
    """The features of one complaint: distinct character n-grams of ``norm`` + context tokens.

    ``norm`` is the engine's normalised text (``engine.prepare_text``). When ``age`` is not given, the age
    written in the text is used, as the engine does.
    """
    text = norm[:MAX_CHARS]
    if age is None and text:
        age = textmod.read_age(textmod.numeric_view(text))
    grams: dict[str, None] = {}
    n_chars = len(text)
    for n in range(NGRAM_MIN, NGRAM_MAX + 1):
        for i in range(n_chars - n + 1):
            g = text[i : i + n]
            if not _NOT_WORD.search(g):  # n-grams of word characters only: no spaces, blanks, punctuation
                grams[g] = None
    out = list(grams)
    out.append(_FEATURE_PREFIX + age_bucket(age))
    if pregnant:
        out.append(_FEATURE_PREFIX + "pregnant")
    out.append(_FEATURE_PREFIX + "bias_text" if text else _FEATURE_PREFIX + "empty")
    return out


def hash_tokens(toks: list[str], dim: int) -> np.ndarray:
    """Stable bucket of each token (CRC-32, so the same in every process and on every machine)."""
    mask = dim - 1
    return np.fromiter((zlib.crc32(t.encode("utf-8")) & mask for t in toks), dtype=np.int64, count=len(toks))


@dataclass(frozen=True)
class SafetyModel:
    codes: tuple[str, ...]
    weights: np.ndarray  # (dim, n_codes) float32
    bias: np.ndarray  # (n_codes,)
    thresholds: np.ndarray  # (n_codes,)
    dim: int

    def scores(self, toks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities per code, and the hashed buckets of the tokens (for the evidence)."""
        idx = hash_tokens(toks, self.dim)
        scale = 1.0 / np.sqrt(max(len(idx), 1))
        logits = self.weights[idx].sum(axis=0) * scale + self.bias
        return 1.0 / (1.0 + np.exp(-logits)), idx

    def predict(self, norm: str, age: float | None, pregnant: bool | None) -> list[tuple[str, float, list[str]]]:
        """Codes over their threshold: ``(code, probability, strongest n-grams)``, most probable first."""
        toks = tokens(norm, age, pregnant)
        probs, idx = self.scores(toks)
        out: list[tuple[str, float, list[str]]] = []
        for j in np.flatnonzero(probs > self.thresholds):
            out.append((self.codes[j], float(probs[j]), top_ngrams(toks, self.weights[idx, j])))
        out.sort(key=lambda t: -t[1])
        return out


def top_ngrams(toks: list[str], contrib: np.ndarray, k: int = 3) -> list[str]:
    """The ``k`` text n-grams that push hardest towards the code, longest wording kept, no repeats."""
    order = sorted(range(len(toks)), key=lambda i: (-float(contrib[i]), -len(toks[i]), toks[i]))
    chosen: list[str] = []
    for i in order:
        t = toks[i]
        if contrib[i] <= 0 or len(chosen) >= k:
            break
        if t.startswith(_FEATURE_PREFIX) or len(t) < 2:
            continue
        if any(t in c or c in t for c in chosen):
            # keep the longer of overlapping n-grams ("叫不" inside "叫不醒")
            chosen = [c for c in chosen if c not in t]
            if any(t in c for c in chosen):
                continue
        chosen.append(t)
    return chosen


def load_model(path: Path) -> SafetyModel:
    """Read the weights file; raise ``ValueError`` when it is not a valid model of this format."""
    try:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"safety model format {version}, expected {FORMAT_VERSION}")
            codes = tuple(str(c) for c in z["codes"])
            dim = int(z["dim"])
            rows = z["rows"].astype(np.int64)
            values = z["values"].astype(np.float32) * float(z["scale"])
            bias = z["bias"].astype(np.float32)
            thresholds = z["thresholds"].astype(np.float32)
    except ValueError:
        raise
    except Exception as exc:  # zip, key or dtype errors of a damaged file
        raise ValueError(f"cannot read safety model {path}: {exc}") from exc
    n = len(codes)
    if dim <= 0 or dim & (dim - 1) or values.shape != (len(rows), n) or bias.shape != (n,) or thresholds.shape != (n,):
        raise ValueError(f"safety model {path} has inconsistent shapes")
    if len(rows) and (rows.min() < 0 or rows.max() >= dim):
        raise ValueError(f"safety model {path} has rows outside its dimension")
    if not (np.isfinite(values).all() and np.isfinite(bias).all() and np.isfinite(thresholds).all()):
        raise ValueError(f"safety model {path} has non-finite numbers")
    weights = np.zeros((dim, n), dtype=np.float32)
    weights[rows] = values
    return SafetyModel(codes, weights, bias, thresholds, dim)


_lock = threading.Lock()
_cache: dict[Path, SafetyModel | None] = {}


def get_model(path: Path | None = None) -> SafetyModel | None:
    """The model, loaded once per process; ``None`` (and an error logged once) when it cannot be read."""
    path = path or MODEL_PATH
    if path in _cache:
        return _cache[path]
    with _lock:
        if path not in _cache:
            try:
                _cache[path] = load_model(path)
            except (OSError, ValueError) as exc:
                log.error("triage safety model disabled, rules only: %s", exc)
                _cache[path] = None
    return _cache[path]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
