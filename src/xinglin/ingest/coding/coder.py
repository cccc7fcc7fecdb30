"""Free-text diagnoses -> codes of the loaded code set.

Pipeline for one string (all in-process, no network, a few milliseconds):

1. ``text.normalise``: width, case, traditional -> simplified, brackets, type/stage numerals (Ⅱ型 -> 2型).
2. Candidates from four sources:
   * literal: names of the code set (and their bracketed synonyms) found verbatim in the text;
   * phrase table learned from training pairs: text fragment -> standard name with counts
     (冠心病 -> 冠状动脉粥样硬化性心脏病, 慢阻肺 -> 慢性阻塞性肺疾病, 癌 -> 癌 (morphology code));
   * rewrite rules learned from training pairs: site + text suffix -> site + name suffix
     (结肠腺癌 -> 结肠 + 恶性肿瘤, 肝转移 -> 肝 + 继发恶性肿瘤), also across a gap of up to two characters
     or with 部 inserted (脾区管状腺瘤 -> 脾良性肿瘤, 足上皮样瘤 -> 足部良性肿瘤);
   * character uni/bi-gram TF-IDF nearest names for the whole text and for each explicit segment.
3. A boosted-tree re-ranker (LightGBM, stored as its text model) scores every candidate from ~40 features;
   a second stage re-scores each candidate knowing the first-stage scores of its competitors in the same text
   (rank, gap to the best, expected number of codes, best longer/shorter name, same ICD category/chapter);
   all candidates above the tuned threshold are returned, best first, a name already covered by a longer
   accepted name dropped.

The learned data (phrase table, rules, priors, trees) lives in ``data/dx_model.npz`` and refers to standard
*names*, not codes: ``build`` resolves it against the names of the list the hospital loaded, so the product
ships no code list. ``dump``/``load`` persist a built index as a NumPy ``.npz`` (no pickle).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from xinglin.core.errors import XinglinError
from xinglin.ingest.coding.codeset import Concept
from xinglin.ingest.coding.text import bracket_variants, compact, normalise, segments

FORMAT = "xinglin-dx-index/3"
MODEL_FORMAT = "xinglin-dx-model/3"
DEFAULT_MODEL = Path(__file__).parent / "data" / "dx_model.npz"
MAX_CODES = 20  # per input string
LEX_MAX = 30  # longest name fragment looked up literally
TFIDF_K = 10  # nearest names per query
PT_MIN_P = 0.05  # phrase-table entries below this support are ignored
RW_GAP = 2  # characters allowed between a site and a rule's text suffix (loose rewrite)
_MORPH = re.compile(r"^M\d{4,6}/\d")  # morphology codes (M801000/3 癌) of the clinical editions

FEATURES = [
    "lit",
    "lit_full",
    "lit_cov",
    "dominated",
    "pt",
    "pt_count",
    "pt_len",
    "pt2",
    "pt_top",
    "tf",
    "tf_top1",
    "bigram_recall",
    "char_recall",
    "prior",
    "seen",
    "name_len",
    "rw_p",
    "rw_x",
    "rw_count",
    "pt_lcb",
    "pt_n",
    "pt_long",
    "tf_rank",
    "side",
    "head2",
    "head1",
    "first2",
    "morph",
    "chapter_prior",
    "code_len",
    "category",
    "super_sub",
    "sub_super",
    "rank_pt",
    "rank_tf",
    "rank_rw",
    "rank_lcb",
    "n_cand",
    "text_len",
    "n_seg",
    "pt_other",
    "rw_loose",
]
# The second stage sees the first stage's score of every candidate of the same text (stacking): how a candidate
# stands among its competitors decides how many codes one string gets.
CONTEXT = [
    "s1",
    "s1_rank",
    "s1_top1",
    "s1_gap_top1",
    "s1_top2",
    "s1_n_pos",
    "s1_expected",
    "s1_super",
    "s1_sub",
    "s1_sibling",
    "same_chapter_top1",
    "same_category_top1",
]
CONTEXT_MIN_P = 0.05  # candidates below this first-stage probability do not count as competitors


class IndexFormatError(XinglinError):
    status = 422


@dataclass(frozen=True, slots=True)
class CodedDiagnosis:
    """One code found in a diagnosis text; ``score`` is the re-ranker's probability (0..1)."""

    code: str
    name: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "score": round(self.score, 4)}


# --------------------------------------------------------------------------------------------------------------
# string arrays inside .npz without pickle: UTF-8 joined by "\n"


def pack_strs(items: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(items).encode("utf-8"), dtype=np.uint8)


def unpack_strs(arr: np.ndarray) -> list[str]:
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError("string arrays are stored as 1-D uint8")
    return bytes(arr).decode("utf-8").split("\n") if arr.size else []


def _clean_name_for_join(name: str) -> str:
    return name.replace("\n", " ")


def grams(s: str) -> list[str]:
    """Character unigrams and bigrams: the TF-IDF vocabulary."""
    return list(s) + [s[i : i + 2] for i in range(len(s) - 1)]


@dataclass(slots=True)
class LearnedModel:
    """What train.py derives from training pairs; names are compact standard names, no codes."""

    targets: list[str]  # compact standard names the tables point to
    prior: np.ndarray  # int32 per target: how often it was a gold answer
    pt_keys: list[str]  # text fragments
    pt_count: np.ndarray  # int32 per fragment: training texts containing it
    pt_offsets: np.ndarray  # int64, len(pt_keys)+1, into pt_targets/pt_target_counts
    pt_targets: np.ndarray  # int32 index into targets
    pt_target_counts: np.ndarray  # int32
    rule_a: list[str]  # text suffix
    rule_b: list[str]  # name suffix
    rule_count: np.ndarray  # int32
    rule_prec: np.ndarray  # float32: how often the rule's candidate was right in training
    chapters: dict[str, int]  # ICD chapter letter -> gold count
    ranker: str  # LightGBM text model over FEATURES (empty: not trained yet, every candidate scores 0.5)
    threshold: float
    meta: dict[str, Any]
    ranker2: str = ""  # second stage over FEATURES + CONTEXT (empty: the first stage's scores are final)
    booster: Any = field(default=None, repr=False, compare=False)  # parsed ``ranker``, built on first use
    booster2: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls, threshold: float = 0.5) -> LearnedModel:
        """No tables, no trees: every candidate scores 0.5."""
        return cls(
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
            ranker="",
            threshold=threshold,
            meta={},
        )

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, **self.arrays())

    def arrays(self) -> dict[str, np.ndarray]:
        meta = {
            **self.meta,
            "format": MODEL_FORMAT,
            "chapters": self.chapters,
            "threshold": self.threshold,
            "features": list(FEATURES),
        }
        return {
            "model_meta": pack_strs([json.dumps(meta, ensure_ascii=False)]),
            "model_targets": pack_strs(self.targets),
            "model_prior": self.prior.astype(np.int32),
            "model_pt_keys": pack_strs(self.pt_keys),
            "model_pt_count": self.pt_count.astype(np.int32),
            "model_pt_offsets": self.pt_offsets.astype(np.int64),
            "model_pt_targets": self.pt_targets.astype(np.int32),
            "model_pt_target_counts": self.pt_target_counts.astype(np.int32),
            "model_rule_a": pack_strs(self.rule_a),
            "model_rule_b": pack_strs(self.rule_b),
            "model_rule_count": self.rule_count.astype(np.int32),
            "model_rule_prec": self.rule_prec.astype(np.float32),
            "model_ranker": pack_strs([self.ranker]),
            "model_ranker2": pack_strs([self.ranker2]),
        }

    @classmethod
    def from_arrays(cls, z: Any, label: str) -> LearnedModel:
        try:
            meta = json.loads(unpack_strs(z["model_meta"])[0])
            if meta.get("format") != MODEL_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            m = cls(
                targets=unpack_strs(z["model_targets"]),
                prior=np.asarray(z["model_prior"], dtype=np.int32),
                pt_keys=unpack_strs(z["model_pt_keys"]),
                pt_count=np.asarray(z["model_pt_count"], dtype=np.int32),
                pt_offsets=np.asarray(z["model_pt_offsets"], dtype=np.int64),
                pt_targets=np.asarray(z["model_pt_targets"], dtype=np.int32),
                pt_target_counts=np.asarray(z["model_pt_target_counts"], dtype=np.int32),
                rule_a=unpack_strs(z["model_rule_a"]),
                rule_b=unpack_strs(z["model_rule_b"]),
                rule_count=np.asarray(z["model_rule_count"], dtype=np.int32),
                rule_prec=np.asarray(z["model_rule_prec"], dtype=np.float32),
                chapters={str(k): int(v) for k, v in meta["chapters"].items()},
                ranker="\n".join(unpack_strs(z["model_ranker"])),
                threshold=float(meta["threshold"]),
                meta=meta,
                ranker2="\n".join(unpack_strs(z["model_ranker2"])),
            )
            m.validate()
        except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise IndexFormatError(
                f"{label}：不是有效的诊断编码模型（{exc}）", f"{label}: not a valid diagnosis-coding model ({exc})"
            ) from exc
        return m

    def validate(self) -> None:
        """Shapes and index ranges, so a damaged or hostile file fails here and not deep inside ``code``."""
        nt, nk, nr = len(self.targets), len(self.pt_keys), len(self.rule_a)
        ok = (
            len(self.prior) == nt
            and len(self.pt_count) == nk
            and len(self.pt_offsets) == nk + 1
            and self.pt_offsets[0] == 0
            and bool(np.all(np.diff(self.pt_offsets) >= 0))
            and self.pt_offsets[-1] == len(self.pt_targets) == len(self.pt_target_counts)
            and (len(self.pt_targets) == 0 or (self.pt_targets.min() >= 0 and self.pt_targets.max() < nt))
            and len(self.rule_b) == nr == len(self.rule_count) == len(self.rule_prec)
        )
        if not ok:
            raise ValueError("inconsistent array shapes or indexes")
        if self.ranker and self.get_booster().num_feature() != len(FEATURES):
            raise ValueError("the re-ranker was trained on another feature layout")
        if self.ranker2 and (not self.ranker or self.get_booster2().num_feature() != len(FEATURES) + len(CONTEXT)):
            raise ValueError("the second-stage re-ranker was trained on another feature layout")

    def get_booster(self) -> Any:
        """The re-ranker as a LightGBM booster (parsed from text once; errors as ValueError)."""
        if self.booster is None:
            self.booster = _parse_booster(self.ranker)
        return self.booster

    def get_booster2(self) -> Any:
        if self.booster2 is None:
            self.booster2 = _parse_booster(self.ranker2)
        return self.booster2


def _parse_booster(text: str) -> Any:
    import lightgbm

    try:
        return lightgbm.Booster(model_str=text)
    except lightgbm.basic.LightGBMError as exc:
        raise ValueError(f"re-ranker: {exc}") from exc


def load_model(path: str | Path = DEFAULT_MODEL) -> LearnedModel:
    path = Path(path)
    if not path.is_file():
        raise IndexFormatError(
            f"找不到诊断编码模型文件：{path.name}（请运行 train.py）",
            f"diagnosis-coding model not found: {path.name} (run train.py)",
        )
    with np.load(path, allow_pickle=False) as z:
        return LearnedModel.from_arrays(z, path.name)


def predict_trees(m: LearnedModel, X: np.ndarray) -> np.ndarray:
    """Raw scores (log-odds) of the first-stage boosted trees, one per candidate row; one thread."""
    if not m.ranker or len(X) == 0:
        return np.zeros(len(X))
    return np.asarray(m.get_booster().predict(X, raw_score=True, num_threads=1), dtype=np.float64)


def predict_stage2(m: LearnedModel, X2: np.ndarray) -> np.ndarray:
    """Raw scores of the second stage over ``FEATURES + CONTEXT`` rows."""
    return np.asarray(m.get_booster2().predict(X2, raw_score=True, num_threads=1), dtype=np.float64)


def sigmoid(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(raw, -40, 40)))


def context_features(names: Sequence[str], cats: Sequence[str], s: np.ndarray) -> np.ndarray:
    """``CONTEXT`` columns for one text's candidates (compact names, ICD categories, first-stage raw scores)."""
    m = len(s)
    if m == 0:
        return np.zeros((0, len(CONTEXT)))
    p = sigmoid(s)
    order = np.argsort(-s, kind="stable")
    rank = np.empty(m)
    rank[order] = np.arange(m)
    top1 = float(s[order[0]])
    top2 = float(s[order[1]]) if m > 1 else -10.0
    sup = np.full(m, -10.0)
    sub = np.full(m, -10.0)
    sib = np.full(m, -10.0)
    pos = {n: i for i, n in enumerate(names)}
    strong = np.nonzero(p > CONTEXT_MIN_P)[0].tolist()
    for j in strong:  # the best score of a longer name containing this one, and of a shorter name inside it
        b = names[j]
        for k in range(len(b)):
            for e in range(k + 1, len(b) + (k > 0)):
                i = pos.get(b[k:e])
                if i is not None:
                    sup[i] = max(sup[i], s[j])
                    sub[j] = max(sub[j], s[i])
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i in strong:
        by_cat[cats[i]].append(i)
    for i in range(m):  # the best other candidate of the same 3-character ICD category
        for j in by_cat.get(cats[i], ()):
            if j != i and s[j] > sib[i]:
                sib[i] = s[j]
    top_cat = cats[order[0]]
    return np.column_stack(
        [
            s,
            rank,
            np.full(m, top1),
            s - top1,
            np.full(m, top2),
            np.full(m, float((p >= 0.35).sum())),
            np.full(m, float(p.sum())),
            sup,
            sub,
            sib,
            np.array([float(c[:1] == top_cat[:1]) for c in cats]),
            np.array([float(c == top_cat) for c in cats]),
        ]
    )


def rerank(m: LearnedModel, blocks: Sequence[tuple[Sequence[str], Sequence[str], np.ndarray]]) -> list[np.ndarray]:
    """Final probabilities for many texts' candidate blocks ``(names, categories, features)``: one call per stage."""
    sizes = [len(x) for _, _, x in blocks]
    if not sum(sizes):
        return [np.zeros(0) for _ in blocks]
    xs = np.vstack([x for _, _, x in blocks if len(x)])
    raw = predict_trees(m, xs)
    if m.ranker2:
        s1 = np.split(raw, np.cumsum(sizes)[:-1])
        x2 = np.vstack(
            [np.hstack([x, context_features(n, c, s)]) for (n, c, x), s in zip(blocks, s1, strict=True) if len(x)]
        )
        raw = predict_stage2(m, x2)
    return np.split(sigmoid(raw), np.cumsum(sizes)[:-1])


# --------------------------------------------------------------------------------------------------------------


class DiagnosisCoder:
    """An index over one code set plus the learned tables resolved against its names."""

    def __init__(
        self,
        concepts: list[Concept],
        model: LearnedModel,
        *,
        vocab: list[str] | None = None,
        idf: np.ndarray | None = None,
        xt: sparse.csr_matrix | None = None,
    ) -> None:
        self.concepts = concepts
        self.model = model
        # One entry per distinct matching form of a name; the primary code is the most specific one
        # (longest code, then first in file order): 骨质疏松 M81.9 / M81.991 -> M81.991.
        self.names: list[str] = []  # compact
        self.display: list[str] = []
        self.primary: list[int] = []  # index into concepts
        self.codes_of: list[list[str]] = []
        name_id: dict[str, int] = {}
        for ci, c in enumerate(concepts):
            k = compact(c.name)
            if not k:
                continue
            g = name_id.get(k)
            if g is None:
                name_id[k] = g = len(self.names)
                self.names.append(k)
                self.display.append(c.name)
                self.primary.append(ci)
                self.codes_of.append([])
            elif len(c.code) > len(concepts[self.primary[g]].code):
                self.primary[g] = ci
            self.codes_of[g].append(c.code)
        self.name_id = name_id
        self.category = [concepts[ci].code[:3].upper() for ci in self.primary]
        self._build_lexicon()
        self._resolve_model()
        if xt is None or vocab is None or idf is None:
            vocab, idf, xt = self._build_tfidf()
        self.vocab_list = vocab
        self.vocab = {g: i for i, g in enumerate(vocab)}
        self.idf = idf
        self.xt = xt

    # ---- building ---------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, concepts: Iterable[Concept], *, model: LearnedModel | str | Path | None = None) -> DiagnosisCoder:
        """Index a code set (a few seconds for 40k concepts)."""
        concepts = list(concepts)
        if not concepts:
            raise XinglinError("代码集为空", "the code set is empty")
        if not isinstance(model, LearnedModel):
            model = load_model(model or DEFAULT_MODEL)
        return cls(concepts, model)

    def _build_lexicon(self) -> None:
        lex: dict[str, list[int]] = defaultdict(list)
        prefixes: set[str] = set()
        for g, n in enumerate(self.names):
            for v in dict.fromkeys(bracket_variants(n)):
                if 2 <= len(v) <= LEX_MAX:
                    lex[v].append(g)
            for m in range(1, min(len(n), 12) + 1):
                prefixes.add(n[:m])
        self.lex = dict(lex)
        self.prefixes = prefixes
        self.nbig = [frozenset(n[i : i + 2] for i in range(len(n) - 1)) or frozenset([n]) for n in self.names]
        self.nchars = [frozenset(n) for n in self.names]

    def _resolve_model(self) -> None:
        m = self.model
        tgt = np.array([self.name_id.get(t, -1) for t in m.targets], dtype=np.int64)
        self.prior = np.zeros(len(self.names), dtype=np.int64)
        ok = tgt >= 0
        np.add.at(self.prior, tgt[ok], m.prior[ok])
        # phrase table: fragment -> (texts containing it, ((name id, count), ...)); unknown names dropped
        pt: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {}
        offs = m.pt_offsets
        ptt = tgt[m.pt_targets] if len(m.pt_targets) else np.zeros(0, dtype=np.int64)
        ptc = m.pt_target_counts
        for i, key in enumerate(m.pt_keys):
            a, b = int(offs[i]), int(offs[i + 1])
            items = tuple((int(g), int(c)) for g, c in zip(ptt[a:b], ptc[a:b], strict=True) if g >= 0)
            if items:
                pt[key] = (int(m.pt_count[i]), items)
        self.pt = pt
        rules: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
        for a, b, c, p in zip(m.rule_a, m.rule_b, m.rule_count, m.rule_prec, strict=True):
            rules[a].append((b, float(p), math.log1p(int(c))))
        self.rules = dict(rules)
        self.rule_amax = max((len(a) for a in self.rules), default=0)
        chap = m.chapters
        self.extra = np.zeros((len(self.names), 5), dtype=np.float64)
        for g, codes in enumerate(self.codes_of):
            self.extra[g] = (
                float(any(_MORPH.match(c) for c in codes)),
                math.log1p(chap.get(codes[0][:1].upper(), 0)),
                min(len(c) for c in codes),
                float(any(len(c) <= 3 for c in codes)),
                len(self.names[g]),
            )

    def _build_tfidf(self) -> tuple[list[str], np.ndarray, sparse.csr_matrix]:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        for i, n in enumerate(self.names):
            counts: dict[str, int] = {}
            for gr in grams(n):
                counts[gr] = counts.get(gr, 0) + 1
            for gr, c in counts.items():
                j = vocab.setdefault(gr, len(vocab))
                rows.append(i)
                cols.append(j)
                tfs.append(1.0 + math.log(c))
        n_docs = len(self.names)
        col = np.asarray(cols, dtype=np.int64)
        df = np.bincount(col, minlength=len(vocab))
        idf = (np.log((n_docs + 1) / (df + 1)) + 1).astype(np.float32)
        vals = np.asarray(tfs, dtype=np.float32) * idf[col]
        x = sparse.csr_matrix((vals, (np.asarray(rows), col)), shape=(n_docs, len(vocab)), dtype=np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        norms[norms == 0] = 1
        x = sparse.diags(1 / norms).astype(np.float32) @ x
        return list(vocab), idf, x.T.tocsr()

    # ---- candidate features -----------------------------------------------------------------------------------

    def _query(self, s: str) -> sparse.csr_matrix:
        counts: dict[int, int] = {}
        for gr in grams(s):
            j = self.vocab.get(gr)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        val = np.array([1.0 + math.log(c) for c in counts.values()], dtype=np.float32) * self.idf[idx]
        nrm = float(np.linalg.norm(val)) or 1.0
        return sparse.csr_matrix((val / nrm, (np.zeros(len(idx), dtype=np.int64), idx)), shape=(1, len(self.vocab)))

    def candidates(
        self, t: str, segs: list[str], own: tuple[set[int], set[str]] | None = None
    ) -> tuple[list[int], np.ndarray]:
        """Candidate name ids and their feature rows for one compact text.

        ``own`` (gold ids, fragments) removes one training text's own counts: leave-one-out features for training.
        """
        og, osubs = own if own else (set(), set())
        cand: dict[int, list[Any]] = {}
        # per candidate: lit lit_full lit_cov span pt pt_count pt_len pt2 pt_top tf tf_top1 rw_p rw_x rw_count
        #                lcb pt_n pt_long tf_rank rw_loose
        n = len(t)

        def slot(g: int) -> list[Any]:
            f = cand.get(g)
            if f is None:
                f = cand[g] = [0.0] * 19
                f[3], f[17] = None, 99.0  # no literal span yet; TF-IDF rank 'not retrieved'
            return f

        lex = self.lex
        for i in range(n):
            for ln in range(2, min(LEX_MAX, n - i) + 1):
                ids = lex.get(t[i : i + ln])
                if ids:
                    for g in ids:
                        f = slot(g)
                        cov = ln / len(self.names[g])
                        if ln > f[0] * n:
                            f[0] = ln / n
                            f[3] = (i, i + ln)
                        if cov > f[2]:
                            f[2] = cov
                        if cov >= 1:
                            f[1] = 1.0
        pt = self.pt
        lmax = int(self.model.meta.get("pt_max_len", 12))
        seen: set[str] = set()
        for i in range(n):
            for ln in range(1, min(lmax, n - i) + 1):
                s = t[i : i + ln]
                if s in seen:
                    continue
                seen.add(s)
                hit = pt.get(s)
                if hit is None:
                    continue
                c, items = hit
                mine = s in osubs
                if mine:
                    c -= 1
                if c <= 0:
                    continue
                if mine:
                    items = tuple((g, cg - 1 if g in og else cg) for g, cg in items)
                best = max(cg for _, cg in items)
                for g, cg in items:
                    if cg <= 0:
                        continue
                    p = cg / (c + 0.5)
                    if p < PT_MIN_P:
                        continue
                    f = slot(g)
                    if p > f[4] or (p == f[4] and ln > f[6]):
                        f[4], f[5], f[6], f[8] = p, math.log1p(cg), float(ln), float(cg == best)
                    if cg >= 2 and p > f[7]:
                        f[7] = p
                    ph = cg / c  # Wilson lower bound (z≈0.7): support that is both high and well attested
                    lcb = (ph + 0.25 / c - 0.707 * math.sqrt(ph * (1 - ph) / c + 0.125 / c / c)) / (1 + 0.5 / c)
                    if lcb > f[14]:
                        f[14] = lcb
                    if p >= 0.5 and ln >= 2:
                        f[15] += 1
                    if ln >= 4 and p > f[16]:
                        f[16] = p
        self._rewrite(t, slot)
        queries = list(dict.fromkeys([t, *segs]))
        for q in queries:
            hits = (self._query(q) @ self.xt).tocoo()  # only names sharing a gram: far fewer than all names
            ids, sc = hits.col, hits.data
            if len(ids) > TFIDF_K:
                part = np.argpartition(-sc, TFIDF_K)[:TFIDF_K]
                ids, sc = ids[part], sc[part]
            order = np.lexsort((ids, -sc))  # by score, ties by name id: deterministic
            for r, (g, v) in enumerate(zip(ids[order].tolist(), sc[order].tolist(), strict=True)):
                if v <= 0:
                    break
                f = slot(g)
                f[9] = max(f[9], float(v))
                f[17] = min(f[17], r)
                if r == 0:
                    f[10] = 1.0
        return self._features(t, cand, og, max(1, len(segs)))

    def _rewrite(self, t: str, slot: Any) -> None:
        """Learned suffix rules: X + a in the text -> X + b when X + b is a name (结肠|腺癌 -> 结肠|恶性肿瘤).

        Loosely too (feature ``rw_loose``): up to ``RW_GAP`` characters between X and a (脾区|管状腺瘤 -> 脾良性肿瘤),
        or X + 部 + b when that is the name (足|上皮样瘤 -> 足部良性肿瘤).
        """
        n = len(t)
        rules, prefixes, name_id = self.rules, self.prefixes, self.name_id
        for j in range(1, n):
            for k in range(1, self.rule_amax + 1):
                if j + k > n:
                    break
                bs = rules.get(t[j : j + k])
                if not bs:
                    continue
                for gap in range(RW_GAP + 1):
                    e = j - gap  # end of X
                    for i in range(e - 1, max(-1, e - 11), -1):
                        x = t[i:e]
                        if x not in prefixes:
                            continue
                        for b, p, lc in bs:
                            g = name_id.get(x + b) if gap == 0 else None
                            if g is not None:
                                f = slot(g)
                                if p > f[11]:
                                    f[11], f[12], f[13] = p, float(e - i), lc
                                continue
                            g = name_id.get(x + b) if gap else name_id.get(x + "部" + b)
                            if g is None and gap:
                                g = name_id.get(x + "部" + b)
                            if g is not None:
                                f = slot(g)
                                f[18] = max(f[18], p)

    def _features(self, t: str, cand: dict[int, list[Any]], og: set[int], n_seg: int) -> tuple[list[int], np.ndarray]:
        gl = list(cand)
        if not gl:
            return gl, np.zeros((0, len(FEATURES)))
        tb = {t[i : i + 2] for i in range(len(t) - 1)}
        tc = set(t)
        spans = [(f[3], g) for g, f in cand.items() if f[3]]
        t_double = float("双" in t or "两" in t)
        t_side = float("左" in t or "右" in t)
        rows = []
        for g in gl:
            f = cand[g]
            dom = 0.0
            if f[3]:
                a, b = f[3]
                for (c2, d2), g2 in spans:
                    if g2 != g and c2 <= a and b <= d2 and (d2 - c2) > (b - a):
                        dom = 1.0
                        break
            nm = self.names[g]
            nb = self.nbig[g]
            pr = int(self.prior[g]) - (1 if g in og else 0)
            g_side = 2.0 if "双" in nm else 1.0 if ("单" in nm or "左" in nm or "右" in nm) else 0.0
            ex = self.extra[g]
            lexical = (len(nb & tb) / len(nb), len(self.nchars[g] & tc) / len(self.nchars[g]))
            prior = (math.log1p(max(pr, 0)), float(pr > 0), ex[4])
            shape = (g_side * 3 + t_double + t_side * 0.5, float(nm[-2:] in t), float(nm[-1] in t), float(nm[:2] in t))
            rows.append([*f[:3], dom, *f[4:11], *lexical, *prior, *f[11:18], *shape, *ex[:4]])
        x = np.asarray(rows, dtype=np.float64)
        pt, lit = x[:, 4], x[:, 2]
        # a longer/shorter candidate with strong evidence competes with this one
        sup = np.zeros(len(gl))
        sub = np.zeros(len(gl))
        strength = pt + lit
        pos = {self.names[g]: i for i, g in enumerate(gl)}
        for j in np.nonzero(strength > 0)[0].tolist():  # names inside a longer name with evidence (0 changes nothing)
            b = self.names[gl[j]]
            for s in {b[k:e] for k in range(len(b)) for e in range(k + 1, len(b) + (k > 0))}:
                i = pos.get(s)
                if i is not None:
                    sup[i] = max(sup[i], strength[j])
                    sub[j] = max(sub[j], strength[i])
        srt = np.sort(pt)[::-1]
        other = np.where(pt == srt[0], srt[1] if len(srt) > 1 else 0.0, srt[0])
        m = len(gl)
        x = np.hstack(
            [
                x,
                sup[:, None],
                sub[:, None],
                np.stack([_rank(pt), _rank(x[:, 9]), _rank(x[:, 16]), _rank(x[:, 19])], 1),
                np.tile([m, len(t), n_seg], (m, 1)),
                other[:, None],
                np.array([cand[g][18] for g in gl])[:, None],
            ]
        )
        return gl, x

    # ---- coding -----------------------------------------------------------------------------------------------

    def prepare(self, text: str) -> tuple[str, list[str]]:
        """Compact text and its explicit segments (without spaces)."""
        norm = normalise(text)
        return norm.replace(" ", ""), [s.replace(" ", "") for s in segments(norm)]

    def score(self, text: str) -> tuple[list[int], np.ndarray]:
        """Candidate name ids and their probabilities, best first."""
        t, segs = self.prepare(text)
        if not t:
            return [], np.zeros(0)
        gl, x = self.candidates(t, segs)
        if not gl:
            return [], np.zeros(0)
        p = rerank(self.model, [self.block(gl, x)])[0]
        order = np.argsort(-p, kind="stable")
        return [gl[i] for i in order], p[order]

    def block(self, gl: list[int], x: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
        """(names, ICD categories, features) of one text's candidates: the input of ``rerank``."""
        return [self.names[g] for g in gl], [self.category[g] for g in gl], x

    def code(self, text: str, *, top_k: int = 3, min_score: float | None = None) -> list[CodedDiagnosis]:
        """Every diagnosis found in ``text`` as a flat list, best first.

        Codes scoring at least ``min_score`` (default: the threshold tuned on training data) are returned,
        at most ``MAX_CODES``; a name contained in a longer accepted name is dropped (糖尿病性肾病 under
        2型糖尿病性肾病). When nothing reaches the threshold the ``top_k`` best candidates are returned as
        suggestions (their low scores say so); ``top_k=0`` returns nothing instead.
        """
        if not isinstance(text, str):
            raise TypeError("text must be a string")
        gl, p = self.score(text)
        if not gl:
            return []
        th = self.model.threshold if min_score is None else min_score
        chosen = [i for i in range(min(len(gl), MAX_CODES)) if p[i] >= th]
        if chosen:
            kept: list[int] = []
            for i in chosen:
                nm = self.names[gl[i]]
                if len(nm) >= 3 and any(nm in self.names[gl[j]] and len(self.names[gl[j]]) > len(nm) for j in kept):
                    continue
                kept.append(i)
            chosen = kept
        else:
            chosen = list(range(min(max(top_k, 0), len(gl))))
        return [self._result(gl[i], float(p[i])) for i in chosen]

    def _result(self, g: int, score: float) -> CodedDiagnosis:
        c = self.concepts[self.primary[g]]
        return CodedDiagnosis(code=c.code, name=c.name, score=score)

    # ---- persistence ------------------------------------------------------------------------------------------

    def dump(self, path: str | Path) -> None:
        """Write the index (code set, TF-IDF matrix and the learned model it was built with) as one ``.npz``."""
        xt = self.xt
        meta = {"format": FORMAT, "concepts": len(self.concepts), "names": len(self.names)}
        with Path(path).open("wb") as fh:
            np.savez_compressed(
                fh,
                meta=pack_strs([json.dumps(meta)]),
                codes=pack_strs([c.code for c in self.concepts]),
                concept_names=pack_strs([_clean_name_for_join(c.name) for c in self.concepts]),
                vocab=pack_strs(self.vocab_list),
                idf=self.idf.astype(np.float32),
                xt_data=xt.data.astype(np.float32),
                xt_indices=xt.indices.astype(np.int32),
                xt_indptr=xt.indptr.astype(np.int64),
                xt_shape=np.asarray(xt.shape, dtype=np.int64),
                **self.model.arrays(),
            )

    @classmethod
    def load(cls, path: str | Path) -> DiagnosisCoder:
        """Read an index written by ``dump`` (``allow_pickle=False``: safe for files from elsewhere)."""
        path = Path(path)
        label = path.name
        if not path.is_file():
            raise IndexFormatError(f"找不到索引文件：{label}", f"index file not found: {label}", status=404)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(unpack_strs(z["meta"])[0])
                found = str(meta.get("format"))
                if found != FORMAT and found.startswith(FORMAT.rsplit("/", 1)[0] + "/"):
                    raise IndexFormatError(
                        f"{label}：索引由旧版杏林生成（{found}），请用 xinglin codes load 重新载入编码集",
                        f"{label}: the index was built by an older Xinglin ({found}); load the code set again "
                        "with `xinglin codes load`",
                    )
                if found != FORMAT:
                    raise ValueError(f"format {found!r}")
                codes = unpack_strs(z["codes"])
                names = unpack_strs(z["concept_names"])
                vocab = unpack_strs(z["vocab"])
                idf = np.asarray(z["idf"], dtype=np.float32)
                shape = tuple(int(v) for v in z["xt_shape"])
                xt = sparse.csr_matrix(
                    (np.asarray(z["xt_data"], dtype=np.float32), z["xt_indices"], z["xt_indptr"]), shape=shape
                )
                xt.check_format(full_check=True)
                model = LearnedModel.from_arrays(z, label)
        except IndexFormatError:
            raise
        except (KeyError, ValueError, TypeError, IndexError, OSError, UnicodeDecodeError) as exc:
            raise IndexFormatError(
                f"{label}：不是有效的诊断编码索引（{exc}）", f"{label}: not a valid diagnosis-coding index ({exc})"
            ) from exc
        if len(codes) != len(names) or len(vocab) != len(idf) or shape[0] != len(vocab):
            raise IndexFormatError(f"{label}：索引数组长度不一致", f"{label}: index arrays do not match")
        concepts = [Concept(c, n) for c, n in zip(codes, names, strict=True)]
        coder = cls(concepts, model, vocab=vocab, idf=idf, xt=xt)
        if shape[1] != len(coder.names):
            raise IndexFormatError(f"{label}：索引与代码集不一致", f"{label}: index does not match its code set")
        return coder


def _rank(col: np.ndarray) -> np.ndarray:
    """How many candidates score strictly higher (ties share a rank, whatever the candidate order)."""
    return (col[None, :] > col[:, None]).sum(1).astype(np.float64)
