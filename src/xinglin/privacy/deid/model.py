"""A small character-level tagger for person names and places (hashed features, NumPy only).

Every character gets a score for the tags O, B-PER, I-PER, B-LOC, I-LOC from the sum of weight
rows picked by hashed features of its neighbourhood (characters, bigrams and a trigram in a ±2
window, character classes, and lexicon flags: surname, compound surname, medical term, place).
It is a multinomial logistic regression trained by ``train.py``; the weights ship as package data
(``data/tagger.npz``).  Inference is a handful of vectorised NumPy operations over the whole text,
so it runs at several MB/s; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from .lexicon import compound_regex, medical_regex, place_regex, surnames

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
N_TAGS = len(TAGS)
HASH_BITS = 18
_PAD = 2
_CHUNK = 32768  # rows per gather: keeps the touched part of the weight table in cache

# character classes: 0 padding, 1 Han, 2 digit, 3 Latin letter, 4 space, 5 other
_ASCII_CLASS = np.full(128, 5, dtype=np.uint32)
_ASCII_CLASS[ord("0") : ord("9") + 1] = 2
_ASCII_CLASS[ord("a") : ord("z") + 1] = 3
_ASCII_CLASS[ord("A") : ord("Z") + 1] = 3
for _c in " \t\r\n":
    _ASCII_CLASS[ord(_c)] = 4
_ASCII_CLASS[0] = 0
# case-fold Latin letters and collapse digits so "Zhang"/"ZHANG" and 2023/2024 share features
_ASCII_NORM = np.arange(128, dtype=np.uint32)
_ASCII_NORM[ord("A") : ord("Z") + 1] += 32
_ASCII_NORM[ord("0") : ord("9") + 1] = ord("0")

# Per-position components: char (5 offsets), class (5), lexicon flags (5), constant 1.
_C = {f"c{o}": i for i, o in enumerate(range(-2, 3))}
_C.update({f"k{o}": 5 + i for i, o in enumerate(range(-2, 3))})
_C.update({f"l{o}": 10 + i for i, o in enumerate(range(-2, 3))})
_ONE = 15
TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("c0",),
    ("c-1",),
    ("c1",),
    ("c-2",),
    ("c2",),
    ("c-1", "c0"),
    ("c0", "c1"),
    ("c-2", "c-1"),
    ("c1", "c2"),
    ("c-1", "c0", "c1"),
    ("k-2", "k-1", "k0", "k1", "k2"),
    ("l-1", "l0", "l1"),
    ("l0", "c0"),
    ("l-1", "c0"),
    ("c-1", "l0"),
    (),  # bias
)


def _hash_matrix() -> np.ndarray:
    """(16 components, n templates) odd multipliers; row _ONE holds a per-template seed."""
    rng = np.random.default_rng(0x5EED)
    k = np.zeros((_ONE + 1, len(TEMPLATES)), dtype=np.uint32)
    for t, comps in enumerate(TEMPLATES):
        for name in comps:
            k[_C[name], t] = rng.integers(1, 1 << 31, dtype=np.uint32) * 2 + 1
        k[_ONE, t] = rng.integers(1, 1 << 31, dtype=np.uint32)
    return k


_K = _hash_matrix()
_GOLDEN = np.uint32(2654435761)  # Knuth's multiplicative hash; the top HASH_BITS bits are the index
_SHIFT = np.uint32(32 - HASH_BITS)


@cache
def _surname_table() -> np.ndarray:
    single, _ = surnames()
    table = np.zeros(0x10000, dtype=np.uint32)
    for c in single:
        table[ord(c)] = 1
    return table


Spans = list[tuple[int, int]]


def _mark(flags: np.ndarray, spans: Spans, shift: int) -> None:
    """Set 2-bit lexicon flags: 1 first char of a match, 2 inside one."""
    for start, end in spans:
        flags[start] |= 1 << shift
        flags[start + 1 : end] |= 2 << shift


def lexicon_spans(text: str, rx) -> Spans:
    return [m.span() for m in rx.finditer(text)]


def features(text: str, medical: Spans | None = None, place: Spans | None = None) -> np.ndarray:
    return _features(text, medical, place)[0]


def _features(text: str, medical: Spans | None, place: Spans | None) -> tuple[np.ndarray, np.ndarray]:
    """Hashed feature indices, shape (len(text), len(TEMPLATES)).

    All templates are hashed at once: each is a linear combination (wrapping uint32) of the
    position's components, computed as one matrix product, then Knuth-multiplied.
    """
    n = len(text)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ascii_mask = codes < 128
    small = np.minimum(codes, 127)
    norm = np.where(ascii_mask, _ASCII_NORM[small], codes)
    han = (codes >= 0x3400) & (codes <= 0x9FFF)
    cls = np.where(ascii_mask, _ASCII_CLASS[small], np.where(han, np.uint32(1), np.uint32(5)))
    lex = _surname_table()[np.minimum(codes, 0xFFFF)] * (codes <= 0xFFFF)
    _mark(lex, lexicon_spans(text, compound_regex()), 1)
    _mark(lex, medical if medical is not None else lexicon_spans(text, medical_regex()), 3)
    _mark(lex, place if place is not None else lexicon_spans(text, place_regex()), 5)

    comp = np.zeros((n + 2 * _PAD, _ONE + 1), dtype=np.uint32)
    rows = slice(_PAD, _PAD + n)
    comp[rows, _C["c0"]] = norm
    comp[rows, _C["k0"]] = cls
    comp[rows, _C["l0"]] = lex
    comp[:, _ONE] = 1
    for base in ("c", "k", "l"):
        col = comp[:, _C[f"{base}0"]]
        for off in (-2, -1, 1, 2):
            shifted = comp[:, _C[f"{base}{off}"]]
            if off < 0:
                shifted[-off:] = col[: len(col) + off]
            else:
                shifted[: len(col) - off] = col[off:]
    h = comp[rows] @ _K
    h *= _GOLDEN
    h >>= _SHIFT
    return h.astype(np.intp), cls


@dataclass(frozen=True, slots=True)
class Tagger:
    weights: np.ndarray  # (2**HASH_BITS, N_TAGS) float32
    o_bias: float  # added to the O score at decode time: negative favours recall

    def scores(self, text: str, medical: Spans | None = None, place: Spans | None = None) -> np.ndarray:
        idx, cls = _features(text, medical, place)
        # names and places are made of Han characters and letters: digits, spaces and
        # punctuation are O without looking (saves the costly gathers for a quarter of a note)
        rows = np.flatnonzero((cls == 1) | (cls == 3))
        out = np.zeros((len(text), N_TAGS), dtype=np.float32)
        out[:, 0] = 1e4
        sub = idx[rows]
        for i in range(0, len(sub), _CHUNK):
            out[rows[i : i + _CHUNK]] = self.weights[sub[i : i + _CHUNK]].sum(axis=1)
        return out

    def spans(
        self, text: str, medical: Spans | None = None, place: Spans | None = None
    ) -> list[tuple[str, int, int, float]]:
        """(type, start, end, confidence) for PER/LOC spans, greedy BIO decoding."""
        if not text:
            return []
        s = self.scores(text, medical, place)
        s[:, 0] += self.o_bias
        best = s.argmax(axis=1)
        hits = np.flatnonzero(best)
        if hits.size == 0:
            return []
        # softmax only where an entity tag won, for a confidence per span
        sub = s[hits]
        sub -= sub.max(axis=1, keepdims=True)
        prob = np.exp(sub)
        prob /= prob.sum(axis=1, keepdims=True)
        nonO = 1.0 - prob[:, 0]
        out: list[tuple[str, int, int, float]] = []
        cur_type = ""
        cur_start = -1
        prev = -2
        conf: list[float] = []
        for pos, tag, p in zip(hits.tolist(), best[hits].tolist(), nonO.tolist(), strict=True):
            typ = "PER" if tag in (1, 2) else "LOC"
            begin = tag in (1, 3)
            if cur_type and (pos != prev + 1 or begin or typ != cur_type):
                out.append((cur_type, cur_start, prev + 1, sum(conf) / len(conf)))
                cur_type = ""
            if not cur_type:
                cur_type, cur_start, conf = typ, pos, []
            conf.append(p)
            prev = pos
        if cur_type:
            out.append((cur_type, cur_start, prev + 1, sum(conf) / len(conf)))
        return out


@cache
def load_tagger() -> Tagger | None:
    """The shipped tagger, or None when the weights file is absent (rules still work)."""
    ref = resources.files(__package__).joinpath("data", "tagger.npz")
    if not ref.is_file():
        return None
    with ref.open("rb") as fh, np.load(fh) as data:
        weights = data["weights"].astype(np.float32)
        o_bias = float(data["o_bias"])
    return Tagger(weights=weights, o_bias=o_bias)
