"""A small neural character tagger for person names and places (NumPy inference only).

Every character gets scores for the tags O, B-PER, I-PER, B-LOC, I-LOC from a three-part network:

1. an embedding bag: the sum of the rows, in one hashed table, picked by features of the character
   (the character, its bigrams and trigrams, a skip bigram, the character classes of a ±2 window,
   upper case, and lexicon flags: surname, compound surname, medical term, place);
2. a stack of residual dilated 1-D convolutions (width 3, dilations 1, 2, 4: each character sees
   about ±9 characters) with ReLU;
3. a linear layer to the five tag scores.

It is trained with PyTorch by ``train.py``; the weights ship as package data (``data/tagger.npz``)
and inference here needs NumPy only.  The text is processed in chunks (with a halo as wide as the
network's reach, so the chunking changes nothing) by a fixed number of NumPy operations per chunk
— a handful of matrix products — so long texts and batches run at several MB/s; nothing is
downloaded.  Characters of code 0 (padding, and the separator ``detect_many`` puts between texts)
carry a zero vector through every layer, and the separator is wider than any dilation, so texts
joined that way score exactly as they do alone.

Decoding favours recall: ``tag_bias`` (chosen on a development split by ``train.py``) is added to
the tag scores before the arg-max, so a character is called part of a name or place even when the
model is somewhat less sure of that than of O — a leaked name is worse than a masked word.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from .lexicon import compound_regex, medical_spans, place_spans, surnames

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
N_TAGS = len(TAGS)
HASH_BITS = 17
_PAD = 3

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

# Per-position base columns: c normalised character, k class, l lexicon flags, w the classes of
# the ±2 window packed into one number, u 1 for an upper-case Latin letter.
_BASES = "cklwu"
# A template is up to three (base, offset) components.
TEMPLATES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("c", 0),),
    (("c", -1), ("c", 0)),
    (("c", 0), ("c", 1)),
    (("c", -1), ("c", 1)),
    (("c", -1), ("c", 0), ("c", 1)),
    (("w", 0),),
    (("l", -1), ("l", 0), ("l", 1)),
    (("l", 0), ("c", 0)),
    (("u", 0), ("u", -1), ("k", 1)),
)
_MAX_COMPS = 3


def _hash_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gather offsets (T, 3) into the padded base matrix, odd multipliers (T, 3), seeds (T,)."""
    rng = np.random.default_rng(0x5EED)
    nb = len(_BASES)
    offs = np.zeros((len(TEMPLATES), _MAX_COMPS), dtype=np.intp)
    mult = np.zeros((len(TEMPLATES), _MAX_COMPS), dtype=np.uint32)
    seed = np.zeros(len(TEMPLATES), dtype=np.uint32)
    for t, comps in enumerate(TEMPLATES):
        for j, (base, off) in enumerate(comps):
            offs[t, j] = (_PAD + off) * nb + _BASES.index(base)
            mult[t, j] = rng.integers(1, 1 << 31, dtype=np.uint32) * 2 + 1
        seed[t] = rng.integers(1, 1 << 31, dtype=np.uint32)
    return offs, mult, seed


_OFFS, _MULT, _SEED = _hash_tables()
# the same, per template: (base column, offset, multiplier) for the chunked path
_COMPS = tuple(
    tuple((_BASES.index(b), off, _MULT[t, j]) for j, (b, off) in enumerate(comps)) for t, comps in enumerate(TEMPLATES)
)
_WINDOW_CLASS = np.array([1 << 12, 1 << 9, 1 << 6, 1 << 3, 1], dtype=np.uint32)  # k-2 + k-1 << 3 + ... + k2 << 12
_DECODE_VECTOR_FROM = 256  # entity characters from which decoding is vectorised
_SHORT = 2048  # chunks up to this length gather all templates at once
_CHUNK = 8192  # characters per chunk of the network (plus a halo on each side)
_SMALL = 384  # chunks up to this many rows use plain products (too small for BLAS to start threads)
_BLOCK = 128  # rows per matrix product: small products keep BLAS on one thread (see _blocks)
_GOLDEN = np.uint32(2654435761)  # Knuth's multiplicative hash; the top HASH_BITS bits are the index
_SHIFT = np.uint32(32 - HASH_BITS)


Spans = list[tuple[int, int]]


def _mark(flags: np.ndarray, spans: Spans, shift: int) -> None:
    """Set 2-bit lexicon flags: 1 first char of a match, 2 inside one."""
    for start, end in spans:
        flags[start] |= 1 << shift
        flags[start + 1 : end] |= 2 << shift


def lexicon_spans(text: str, rx) -> Spans:
    return [m.span() for m in rx.finditer(text)]


def features(text: str, medical: Spans | None = None, place: Spans | None = None) -> np.ndarray:
    """Hashed feature indices, shape (len(text), len(TEMPLATES)) (used for training)."""
    base, _ = _prepare(text, medical, place)
    cols = [np.ascontiguousarray(base[:, j]) for j in range(len(_BASES))]
    n = len(text)
    out = np.empty((n, len(TEMPLATES)), dtype=np.intp)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        for t in range(len(TEMPLATES)):
            out[lo:hi, t] = _hash_one(cols, t, lo, hi)
    return out


def _blocks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for ``x`` of a multiple of ``_BLOCK`` rows, as a stack of small products.

    One large product makes OpenBLAS start its thread pool, which on a busy machine costs several
    times the arithmetic in spinning threads; products of ``_BLOCK`` rows stay on the caller's core.
    """
    rows, dim = x.shape
    return (x.reshape(rows // _BLOCK, _BLOCK, dim) @ w).reshape(rows, w.shape[1])


@cache
def _char_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per BMP code point: packed info (class | upper << 3 | surname << 4 | open << 5) and the
    XOR that normalises it (Latin case, digits).  Code points above the BMP read entry 0xFFFF:
    class 5, XOR 0 (kept as they are)."""
    info = np.full(0x10000, 5, dtype=np.uint32)
    info[0x3400:0xA000] = 1
    info[:128] = _ASCII_CLASS
    info[ord("A") : ord("Z") + 1] |= 1 << 3
    single, _ = surnames()
    for c in single:
        info[ord(c)] |= 1 << 4
    cls = info & 7
    info[(cls == 1) | (cls == 3)] |= 1 << 5
    for dot in "·•・":  # the middle dot of transliterated names (克里斯·莫瑞斯)
        info[ord(dot)] |= 1 << 5
    fold = np.zeros(0x10000, dtype=np.uint32)
    fold[:128] = np.arange(128, dtype=np.uint32) ^ _ASCII_NORM
    return info, fold


def _prepare(text: str, medical: Spans | None, place: Spans | None) -> tuple[np.ndarray, np.ndarray]:
    """The padded base matrix (rows: positions, columns: ``_BASES``) of ``text``, and a mask of
    the positions that are O without looking (not Han, not a letter, not a name dot)."""
    n = len(text)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    info_t, fold_t = _char_tables()
    bmp = np.minimum(codes, 0xFFFF)
    info = info_t[bmp]
    base = np.zeros((n + 2 * _PAD, len(_BASES)), dtype=np.uint32)
    body = base[_PAD : _PAD + n]
    body[:, 0] = codes ^ fold_t[bmp]
    body[:, 1] = info & 7
    lex = body[:, 2]
    lex[:] = (info >> 4) & 1
    body[:, 4] = (info >> 3) & 1
    _mark(lex, lexicon_spans(text, compound_regex()), 1)
    _mark(lex, medical if medical is not None else medical_spans(text), 3)
    _mark(lex, place if place is not None else place_spans(text), 5)
    base[2:-2, 3] = np.convolve(base[:, 1], _WINDOW_CLASS, mode="valid")
    return base, (info & 32) == 0


def _hash_one(cols: list[np.ndarray], t: int, lo: int, hi: int) -> np.ndarray:
    """Row indices of template ``t`` for positions ``lo:hi`` (``cols``: contiguous base columns)."""
    acc = np.full(hi - lo, _SEED[t], dtype=np.uint32)
    for j, off, mult in _COMPS[t]:
        acc += cols[j][_PAD + off + lo : _PAD + off + hi] * mult
    acc *= _GOLDEN
    acc >>= _SHIFT
    return acc


def _hash_all(base: np.ndarray, a: int, m: int) -> np.ndarray:
    """(m, T) row indices of positions ``a:a+m`` with three gathers, one per component slot: few
    NumPy calls, for short chunks (``m <= _SHORT``)."""
    flat = base.ravel()[a * len(_BASES) :]
    idx = _short_index()
    h = flat.take(idx[0, :m]) * _MULT_BY_SLOT[0]
    h += flat.take(idx[1, :m]) * _MULT_BY_SLOT[1]
    h += flat.take(idx[2, :m]) * _MULT_BY_SLOT[2]
    h += _SEED
    h *= _GOLDEN
    h >>= _SHIFT
    return h.astype(np.intp)


@cache
def _short_index() -> np.ndarray:
    """(3, _SHORT, T) positions in the flattened base matrix of each template component."""
    rows = np.arange(0, _SHORT * len(_BASES), len(_BASES), dtype=np.intp)[:, None, None] + _OFFS
    return np.ascontiguousarray(rows.transpose(2, 0, 1))


_MULT_BY_SLOT = [np.ascontiguousarray(_MULT[:, j]) for j in range(_MAX_COMPS)]


@dataclass(frozen=True, slots=True)
class Tagger:
    embed: np.ndarray  # (2**HASH_BITS, D) float32, the hashed feature table
    embed_bias: np.ndarray  # (D,)
    convs: tuple[tuple[np.ndarray, np.ndarray, int], ...]  # (weight (3, D, D), bias (D,), dilation)
    out_w: np.ndarray  # (D, N_TAGS)
    out_b: np.ndarray  # (N_TAGS,)
    tag_bias: np.ndarray  # (N_TAGS,) added to the scores for the loose (recall) decision
    seed_bias: np.ndarray  # (N_TAGS,) the same for the strict decision a span must contain

    @property
    def reach(self) -> int:
        """How far (in characters) the convolutions look on each side."""
        return sum(d for _, _, d in self.convs)

    def scores(self, text: str, medical: Spans | None = None, place: Spans | None = None) -> np.ndarray:
        """(len(text), N_TAGS) raw scores; digits, spaces and punctuation are O without looking."""
        n = len(text)
        base, closed = _prepare(text, medical, place)
        dead = np.flatnonzero(base[_PAD : _PAD + n, 1] == 0)  # code-0 characters carry zero vectors
        if n <= min(_CHUNK, _SHORT):  # one chunk, one gather: the fewest NumPy calls for a short text
            h = self._forward(base, [], dead, 0, n)
            out = h @ self.out_w if n <= _SMALL else _blocks(h, self.out_w)[:n]
            out += self.out_b
            out[closed, 0] = 1e4
            return out
        cols = [np.ascontiguousarray(base[:, j]) for j in range(len(_BASES))]
        halo = self.reach
        out = np.empty((n, N_TAGS), dtype=np.float32)
        for lo in range(0, n, _CHUNK):
            hi = min(n, lo + _CHUNK)
            a, b = max(0, lo - halo), min(n, hi + halo)
            k0, k1 = np.searchsorted(dead, (a, b))
            h = self._forward(base, cols, dead[k0:k1] - a, a, b)
            h = h @ self.out_w if len(h) <= _SMALL else _blocks(h, self.out_w)
            out[lo:hi] = h[lo - a : hi - a]
        out += self.out_b
        out[closed, 0] = 1e4
        return out

    def _forward(self, base: np.ndarray, cols: list[np.ndarray], dead: np.ndarray, a: int, b: int) -> np.ndarray:
        """Hidden vectors of positions ``a:b`` (for long chunks, rows past ``b - a`` up to a multiple
        of ``_BLOCK`` are padding), positions outside taken as padding; ``dead``: the code-0 rows."""
        m = b - a
        small = m <= _SMALL
        rows = m if small else -(-m // _BLOCK) * _BLOCK
        emb = self.embed
        dim = emb.shape[1]
        margin = max(d for _, _, d in self.convs)
        # h lives between zero margins as wide as the widest dilation: the taps are plain slices
        buf = np.zeros((rows + 2 * margin, dim), dtype=np.float32)
        h = buf[margin : margin + rows]
        if m <= _SHORT:
            idx = _hash_all(base, a, m)
            # template-major, so the sum runs over the leading axis (contiguous adds, not a strided reduce)
            np.sum(emb.take(idx.T.ravel(), axis=0).reshape(len(TEMPLATES), m, dim), axis=0, out=h[:m])
        else:
            body = h[:m]
            emb.take(_hash_one(cols, 0, a, b), axis=0, out=body)
            for t in range(1, len(TEMPLATES)):
                body += emb.take(_hash_one(cols, t, a, b), axis=0)
        h += self.embed_bias
        np.maximum(h, 0, out=h)
        if rows > m:
            h[m:] = 0
        if dead.size:
            h[dead] = 0
        for w, bias, d in self.convs:
            left, right = buf[margin - d : margin - d + rows], buf[margin + d : margin + d + rows]
            if small:  # one product over the three taps side by side: fewest NumPy calls
                z = np.concatenate((left, h, right), axis=1) @ w.reshape(3 * dim, dim)
            else:
                z = _blocks(left, w[0])
                z += _blocks(h, w[1])
                z += _blocks(right, w[2])
            z += bias
            np.maximum(z, 0, out=z)
            h += z
            if rows > m:
                h[m:] = 0
            if dead.size:
                h[dead] = 0
        return h

    def spans(self, text: str, medical: Spans | None = None, place: Spans | None = None) -> list[tuple[str, int, int]]:
        """(type, start, end) of PER/LOC spans.

        Hysteresis decoding: characters are tagged by the arg-max of the scores plus ``tag_bias``
        (generous, for recall and whole spans), and a span is kept only when at least one of its
        characters is also an entity under ``seed_bias`` (stricter), which drops the scattered
        two-character fragments the generous decision alone would mask in ordinary text.
        """
        if not text:
            return []
        s = self.scores(text, medical, place)
        return decode(s, self.tag_bias, self.seed_bias)


def decode(s: np.ndarray, tag_bias: np.ndarray, seed_bias: np.ndarray) -> list[tuple[str, int, int]]:
    """Hysteresis decoding of raw scores (see :meth:`Tagger.spans`).

    A span is a maximal run of characters whose biased arg-max is an entity tag, whatever the
    type (with generous offsets the per-character type flips inside unseen names: 伊/LOC 布/PER);
    its type is the one with the larger summed score over the run.
    """
    hits = np.flatnonzero((s + tag_bias).argmax(axis=1))
    if hits.size == 0:
        return []
    if hits.size > _DECODE_VECTOR_FROM:
        return _decode_runs(s, hits, seed_bias)
    # few entity characters (a short text): plain Python beats a dozen NumPy calls
    rows = s[hits].tolist()
    pos = hits.tolist()
    b0, b1, b2, b3, b4 = seed_bias.tolist()
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(pos)
    while i < n:
        j = i
        while j + 1 < n and pos[j + 1] == pos[j] + 1:
            j += 1
        margin = 0.0
        strong = False
        for o, bp, ip, bl, il in rows[i : j + 1]:
            margin += max(bp, ip) - max(bl, il)
            if not strong:
                base = o + b0
                strong = bp + b1 > base or ip + b2 > base or bl + b3 > base or il + b4 > base
        if strong:
            out.append(("PER" if margin >= 0 else "LOC", pos[i], pos[j] + 1))
        i = j + 1
    return out


def _decode_runs(s: np.ndarray, hits: np.ndarray, seed_bias: np.ndarray) -> list[tuple[str, int, int]]:
    """:func:`decode` for many entity characters, vectorised."""
    strong = np.flatnonzero((s[hits] + seed_bias).argmax(axis=1))
    if strong.size == 0:
        return []
    strong_pos = hits[strong]
    new = np.ones(hits.size, dtype=bool)
    new[1:] = hits[1:] != hits[:-1] + 1
    first = np.flatnonzero(new)
    starts = hits[first]
    ends = hits[np.append(first[1:], hits.size) - 1] + 1
    sub = s[hits].astype(np.float64)
    margin = np.add.reduceat(np.maximum(sub[:, 1], sub[:, 2]) - np.maximum(sub[:, 3], sub[:, 4]), first)
    # keep spans holding a strong position
    k = np.searchsorted(strong_pos, starts)
    ok = (k < strong_pos.size) & (strong_pos[np.minimum(k, strong_pos.size - 1)] < ends)
    return [
        ("PER" if m >= 0 else "LOC", a, b)
        for m, a, b, keep in zip(margin.tolist(), starts.tolist(), ends.tolist(), ok.tolist(), strict=True)
        if keep
    ]


@cache
def load_tagger() -> Tagger | None:
    """The shipped tagger, or None when the weights file is absent (rules still work)."""
    ref = resources.files(__package__).joinpath("data", "tagger.npz")
    if not ref.is_file():
        return None
    with ref.open("rb") as fh, np.load(fh) as data:
        return tagger_from_arrays(dict(data))


def tagger_from_arrays(data: dict[str, np.ndarray]) -> Tagger | None:
    """A :class:`Tagger` from the arrays ``train.py`` saves (None for another feature layout)."""
    if "embed" not in data or data["embed"].shape[0] != 1 << HASH_BITS:
        return None  # weights of another feature layout: retrain with train.py
    f32 = np.float32
    dilations = [int(d) for d in data["dilations"]]
    convs = tuple(
        (np.ascontiguousarray(data[f"conv{i}_w"], dtype=f32), data[f"conv{i}_b"].astype(f32), d)
        for i, d in enumerate(dilations)
    )
    tag_bias = data["tag_bias"].astype(f32)
    return Tagger(
        embed=data["embed"].astype(f32),
        embed_bias=data["embed_bias"].astype(f32),
        convs=convs,
        out_w=data["out_w"].astype(f32),
        out_b=data["out_b"].astype(f32),
        tag_bias=tag_bias,
        seed_bias=data["seed_bias"].astype(f32) if "seed_bias" in data else tag_bias,
    )
