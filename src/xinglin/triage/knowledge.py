"""Loading and compiling the triage knowledge files (package data under ``knowledge/``).

The files are reviewed by clinicians; this module checks them strictly when it loads them (unknown
department codes, unknown concept names, non-text terms) so that a typo fails loudly at start-up rather
than silently missing a red flag.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from xinglin.triage.models import DEPARTMENTS, RED_FLAG_CODES, VITAL_FIELDS

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"
_ASCII_ALNUM = re.compile(r"[a-z0-9]")

try:  # the C loader is ~10x faster; fall back to pure Python where libyaml is missing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


class KnowledgeError(ValueError):
    """A knowledge file is malformed (raised at load time, never while assessing)."""


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # concept | part | quality | atom | modifier | ignore | dept | cue_strong | cue_weak | terminator
    id: str


@dataclass(frozen=True, slots=True)
class Match:
    start: int
    end: int
    term: str
    entries: tuple[Entry, ...]


class TermIndex:
    """Exact-term finder: a dict of terms plus, per first character, the term lengths to try.

    Terms that begin or end with a Latin letter or digit only match on word boundaries, so that
    "ear" is not found in "year" while "查hpv" still finds "hpv".
    """

    def __init__(self) -> None:
        self.terms: dict[str, list[Entry]] = {}
        self._lengths: dict[str, tuple[int, ...]] = {}

    def add(self, term: str, entry: Entry) -> None:
        entries = self.terms.setdefault(term, [])
        if entry not in entries:
            entries.append(entry)

    def finish(self) -> None:
        lengths: dict[str, set[int]] = {}
        for term in self.terms:
            lengths.setdefault(term[0], set()).add(len(term))
        self._lengths = {ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()}
        self._frozen = {t: tuple(es) for t, es in self.terms.items()}

    def scan(self, text: str) -> list[Match]:
        out: list[Match] = []
        n = len(text)
        lengths, terms = self._lengths, self._frozen
        for i, ch in enumerate(text):
            lens = lengths.get(ch)
            if not lens:
                continue
            if _ASCII_ALNUM.match(ch) and i > 0 and _ASCII_ALNUM.match(text[i - 1]):
                continue  # inside a Latin word
            for length in lens:
                end = i + length
                if end > n:
                    continue
                term = text[i:end]
                entries = terms.get(term)
                if entries is None:
                    continue
                if end < n and _ASCII_ALNUM.match(term[-1]) and _ASCII_ALNUM.match(text[end]):
                    continue
                out.append(Match(i, end, term, entries))
        return out


@dataclass(frozen=True, slots=True)
class Concept:
    id: str
    kind: str  # concept | part | quality | atom | modifier
    dept: dict[str, float] = field(default_factory=dict)
    level: int = 4
    tags: frozenset[str] = frozenset()
    free_parts: frozenset[str] | None = None  # atoms: only count when not attached to other parts


@dataclass(frozen=True, slots=True)
class FlagRule:
    code: str | None
    level: int
    dept: str
    groups: tuple[tuple[str, ...], ...]
    unless: tuple[str, ...] = ()
    current: bool = False
    age_lt: float | None = None
    age_ge: float | None = None
    pregnant: bool | None = None
    child: bool | None = None  # True: children only; False: everyone but children
    settles: tuple[str, ...] = ()  # red-flag codes the statistical safety check may not add when this rule fires


@dataclass(frozen=True, slots=True)
class Threshold:
    op: str
    value: float

    def test(self, x: float) -> bool:
        return {
            "<": x < self.value,
            "<=": x <= self.value,
            ">": x > self.value,
            ">=": x >= self.value,
        }[self.op]


@dataclass
class Knowledge:
    semantic: TermIndex
    modifiers: TermIndex
    cues: TermIndex
    icd: TermIndex
    concepts: dict[str, Concept]
    compose: dict[str, dict[str, str]]
    orphans: dict[str, str]
    flags: list[FlagRule]
    compound_level_1: list[str]
    # Evidence wording that makes a compound flag too mild to count ("打蔫", "说胡话"): code -> words.
    compound_mild: dict[str, list[str]]
    vitals: dict[str, dict[int, list[Threshold]]]
    population: dict[str, Any]
    typos_zh: list[tuple[str, str]]
    typos_en: dict[str, str]
    typo_phrases_en: list[tuple[re.Pattern[str], str]]
    en_vocab: frozenset[str]
    en_common: frozenset[str]
    en_deletes: dict[str, str]
    icd_dept: dict[str, str]
    dept_alias: dict[str, str]
    scope: dict[str, int]
    patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    overlay: TermIndex = field(default_factory=TermIndex)  # terms found beside the others, hiding none
    # variants.yaml: danger words typed in pinyin (one regex, the key of a match is its letters), regional
    # wordings → Mandarin (single characters first, then longest first)
    pinyin: re.Pattern[str] | None = None
    pinyin_words: dict[str, str] = field(default_factory=dict)
    dialect: list[tuple[str, str]] = field(default_factory=list)
    # flags that imply another ("a seizure in progress" → consciousness is altered): code, implied, with, unless
    implies: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def _norm(term: Any, where: str) -> str:
    if not isinstance(term, str):
        raise KnowledgeError(f"{where}: term {term!r} is not text (quote it in YAML)")
    out = unicodedata.normalize("NFKC", term).lower().replace("\u2019", "'").strip()
    if not out:
        raise KnowledgeError(f"{where}: empty term")
    return out


_PINYIN_SYLLABLE = re.compile(r"^[a-z]+$")


def pinyin_key(text: str) -> str:
    """The letters of a pinyin phrase: "Xiang-si3 le" → "xiangsile"."""
    return "".join(ch for ch in text.lower() if "a" <= ch <= "z")


def _load_variants(raw: Any) -> tuple[re.Pattern[str] | None, dict[str, str], list[tuple[str, str]]]:
    from xinglin.triage.text import to_simplified

    words: dict[str, str] = {}
    sources: list[tuple[int, str]] = []
    for phrase, hanzi in (raw.get("pinyin") or {}).items():
        syllables = str(phrase).lower().split()
        if not syllables or not all(_PINYIN_SYLLABLE.match(s) for s in syllables) or not isinstance(hanzi, str):
            raise KnowledgeError(f"variants.pinyin: bad entry {phrase!r}: {hanzi!r}")
        key = "".join(syllables)
        if key in words and words[key] != hanzi:
            raise KnowledgeError(f"variants.pinyin: {phrase!r} is written like another phrase")
        words[key] = to_simplified(hanzi)
        # syllables apart (space, hyphen, apostrophe, a tone number); run together only for three or more
        sep = r"[1-5]?[\s'-]*" if len(syllables) >= 3 else r"[1-5]?[\s'-]+"
        sources.append((len(key), sep.join(syllables) + r"[1-5]?"))
    pattern = None
    if sources:
        alternation = "|".join(src for _, src in sorted(sources, key=lambda x: -x[0]))
        pattern = re.compile(rf"(?<![a-z])(?:{alternation})(?![a-z])")
    dialect: list[tuple[str, str]] = []
    for wording, mandarin in (raw.get("dialect") or {}).items():
        if not isinstance(wording, str) or not isinstance(mandarin, str) or not wording:
            raise KnowledgeError(f"variants.dialect: bad entry {wording!r}: {mandarin!r}")
        dialect.append((to_simplified(wording), to_simplified(mandarin)))
    dialect.sort(key=lambda kv: (len(kv[0]) > 1, -len(kv[0])))
    return pattern, words, dialect


def _dept_weights(raw: Any, where: str) -> dict[str, float]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: dept must be a mapping")
    out: dict[str, float] = {}
    for code, weight in raw.items():
        if not isinstance(code, str) or code not in DEPARTMENTS:
            raise KnowledgeError(f'{where}: unknown department {code!r} (quote codes: "03.04")')
        out[code] = float(weight)
    return out


def _load_yaml(name: str) -> Any:
    return yaml.load((KNOWLEDGE_DIR / name).read_text("utf-8"), Loader=_Loader)


def _parse_threshold(text: str, where: str) -> Threshold:
    m = re.fullmatch(r"\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*", str(text))
    if not m:
        raise KnowledgeError(f"{where}: bad threshold {text!r}")
    return Threshold(m.group(1), float(m.group(2)))


# Pattern macros: "~" = a few characters of the same clause, "~~" = up to the end of a longer clause.
# Clause separators are the engine's punctuation (a gap never crosses "，", "。", ",", "." ...).
# A gap never holds a negation either: "嘴巴不肿" is no swelling, "嗓子也不紧" no tight throat, "vomiting, no
# blood" no blood (a pattern that means a negated wording names it in its words: "叫~不醒").
_CLAUSE_CHAR = r"(?:[^,;!?\n\u3000。，；！？:：.不没无未冇nw']|n(?!o\b|ot\b)|w(?!ithout\b)|'(?!t\b))"
_GAP_MACROS = (("~~", _CLAUSE_CHAR + "{0,24}?"), ("~", _CLAUSE_CHAR + "{0,10}?"))


def compile_pattern(raw: Any, where: str) -> str:
    """A knowledge-file pattern → regex source. Patterns are regular expressions over the normalised
    text (lower case, Simplified Chinese) in which ``~`` stands for "a few more characters of the same
    clause" (``~~``: a longer stretch), so that words between the trigger parts do not break a match:
    "叫~不醒" finds "叫不醒", "叫他不醒", "叫了半天也叫不醒"."""
    if not isinstance(raw, str) or not raw.strip():
        raise KnowledgeError(f"{where}: pattern {raw!r} is not text (quote it in YAML)")
    src = unicodedata.normalize("NFKC", raw).lower().strip()
    out, i = [], 0
    while i < len(src):
        for macro, repl in _GAP_MACROS:
            if src.startswith(macro, i):
                out.append(repl)
                i += len(macro)
                break
        else:
            out.append(src[i])
            i += 1
    regex = "".join(out)
    try:
        re.compile(regex)
    except re.error as exc:
        raise KnowledgeError(f"{where}: bad pattern {raw!r}: {exc}") from exc
    return regex


def _edits1_deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=1)
def load() -> Knowledge:
    """Load and compile every knowledge file once per process."""
    lex = _load_yaml("lexicon.yaml")
    rf = _load_yaml("red_flags.yaml")
    semantic, modifiers, cues, icd = TermIndex(), TermIndex(), TermIndex(), TermIndex()
    concepts: dict[str, Concept] = {}
    en_words: set[str] = set()

    def register(cid: str, concept: Concept, body: dict[str, Any], index: TermIndex, where: str) -> None:
        if cid in concepts:
            raise KnowledgeError(f"{where}: duplicate name {cid!r}")
        concepts[cid] = concept
        entry = Entry(concept.kind, cid)
        for lang in ("zh", "en"):
            for raw in body.get(lang) or []:
                term = _norm(raw, f"{where}.{lang}")
                index.add(term, entry)
                if lang == "en":
                    en_words.update(re.findall(r"[a-z]+", term))

    for section, kind in (("parts", "part"), ("qualities", "quality"), ("concepts", "concept")):
        for cid, body in (lex.get(section) or {}).items():
            where = f"lexicon.{section}.{cid}"
            concept = Concept(
                id=cid,
                kind=kind,
                dept=_dept_weights(body.get("dept"), where),
                level=int(body.get("level", 4)),
                tags=frozenset(body.get("tags") or ()),
            )
            register(cid, concept, body, semantic, where)
    for cid, body in (lex.get("modifiers") or {}).items():
        register(cid, Concept(id=cid, kind="modifier"), body, modifiers, f"lexicon.modifiers.{cid}")
    patterns: list[tuple[str, re.Pattern[str]]] = []
    overlay = TermIndex()
    for cid, body in (rf.get("atoms") or {}).items():
        free = body.get("free_parts")
        concept = Concept(id=cid, kind="atom", free_parts=frozenset(free) if free is not None else None)
        raw_patterns = body.get("patterns") or []
        if not (raw_patterns or body.get("overlay")):
            register(cid, concept, body, semantic, f"red_flags.atoms.{cid}")
            continue
        # An overlay atom (one with patterns, or `overlay: true`): its terms are found like patterns,
        # beside the exact terms, so that a new wording never hides a body part or a quality inside it.
        register(cid, concept, {}, semantic, f"red_flags.atoms.{cid}")
        where = f"red_flags.atoms.{cid}"
        sources = [compile_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(raw_patterns)]
        for lang in ("zh", "en"):
            for raw in body.get(lang) or []:
                overlay.add(_norm(raw, f"{where}.{lang}"), Entry("atom", cid))
                if lang == "en":
                    en_words.update(re.findall(r"[a-z]+", _norm(raw, where)))
        if sources:
            patterns.append((cid, re.compile("|".join(f"(?:{src})" for src in sources))))

    ignore = lex.get("ignore") or {}
    for lang in ("zh", "en"):
        for raw in ignore.get(lang) or []:
            semantic.add(_norm(raw, f"lexicon.ignore.{lang}"), Entry("ignore", "ignore"))

    dept_alias: dict[str, str] = {}
    for code, terms in (lex.get("dept_aliases") or {}).items():
        if code not in DEPARTMENTS:
            raise KnowledgeError(f"lexicon.dept_aliases: unknown department {code!r}")
        for raw in [DEPARTMENTS[code].name, *(terms or [])]:
            term = _norm(raw, f"lexicon.dept_aliases.{code}")
            dept_alias[term] = code
            semantic.add(term, Entry("dept", code))

    neg = lex.get("negation") or {}
    for kind, key in (("cue_strong", "strong"), ("cue_weak", "weak"), ("terminator", "terminators")):
        for lang in ("zh", "en"):
            for raw in (neg.get(key) or {}).get(lang) or []:
                cues.add(_norm(raw, f"lexicon.negation.{key}"), Entry(kind, lang))
    scope = {k: int(v) for k, v in (neg.get("scope") or {"zh": 14, "en": 45, "weak": 2}).items()}

    parts = {c.id for c in concepts.values() if c.kind == "part"}
    qualities = {c.id for c in concepts.values() if c.kind == "quality"}
    compose: dict[str, dict[str, str]] = {}
    for part, mapping in (lex.get("compose") or {}).items():
        if part not in parts:
            raise KnowledgeError(f"lexicon.compose: unknown part {part!r}")
        for quality, target in (mapping or {}).items():
            if quality not in qualities or target not in concepts:
                raise KnowledgeError(f"lexicon.compose.{part}: unknown {quality!r} or {target!r}")
        compose[part] = dict(mapping or {})
    fallback = {
        qid: str(body["fallback"]) for qid, body in (lex.get("qualities") or {}).items() if body.get("fallback")
    }
    for qid, target in fallback.items():
        if target not in qualities:
            raise KnowledgeError(f"lexicon.qualities.{qid}: unknown fallback {target!r}")
    for mapping in compose.values():
        for qid, target in fallback.items():
            if qid not in mapping and target in mapping:
                mapping[qid] = mapping[target]
    orphans = dict(lex.get("orphans") or {})
    for quality, target in orphans.items():
        if quality not in qualities or target not in concepts:
            raise KnowledgeError(f"lexicon.orphans: unknown {quality!r} or {target!r}")

    flags: list[FlagRule] = []
    for i, body in enumerate(rf.get("flags") or []):
        where = f"red_flags.flags[{i}]"
        code = body.get("code")
        if code is not None and code not in RED_FLAG_CODES:
            raise KnowledgeError(f"{where}: unknown red-flag code {code!r}")
        groups = body.get("all") or ([body["any"]] if body.get("any") else [])
        if not groups:
            raise KnowledgeError(f"{where}: needs `all` or `any`")
        for name in [n for g in groups for n in g] + list(body.get("unless") or []):
            if name not in concepts:
                raise KnowledgeError(f"{where}: unknown concept {name!r}")
        dept = str(body.get("dept", "20"))
        if dept not in DEPARTMENTS:
            raise KnowledgeError(f"{where}: unknown department {dept!r}")
        level = int(body.get("level", 2))
        if code is not None and level > 2:
            raise KnowledgeError(f"{where}: a red flag must be level 1 or 2")
        settles = tuple(body.get("settles") or ())
        if settles and code is not None:
            raise KnowledgeError(f"{where}: only an urgency rule (code: null) can settle red flags")
        for c in settles:
            if c not in RED_FLAG_CODES:
                raise KnowledgeError(f"{where}: settles unknown red-flag code {c!r}")
        flags.append(
            FlagRule(
                code=code,
                level=level,
                dept=dept,
                groups=tuple(tuple(g) for g in groups),
                unless=tuple(body.get("unless") or ()),
                current=bool(body.get("current", False)),
                age_lt=body.get("age_lt"),
                age_ge=body.get("age_ge"),
                pregnant=body.get("pregnant"),
                child=body.get("child"),
                settles=settles,
            )
        )
    compound = [str(c) for c in rf.get("compound_level_1") or []]
    for c in compound:
        if c not in RED_FLAG_CODES:
            raise KnowledgeError(f"red_flags.compound_level_1: unknown code {c!r}")
    compound_mild: dict[str, list[str]] = {}
    for c, words in (rf.get("compound_mild") or {}).items():
        if c not in compound:
            raise KnowledgeError(f"red_flags.compound_mild: {c!r} is not in compound_level_1")
        compound_mild[str(c)] = [_norm(str(w), f"red_flags.compound_mild.{c}") for w in words or []]
    implies: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = []
    for i, body in enumerate(rf.get("implies") or []):
        where = f"red_flags.implies[{i}]"
        code, implied = body.get("code"), body.get("adds")
        if code not in RED_FLAG_CODES or implied not in RED_FLAG_CODES:
            raise KnowledgeError(f"{where}: unknown red-flag code {code!r} or {implied!r}")
        for name in [*(body.get("with") or []), *(body.get("unless") or [])]:
            if name not in concepts:
                raise KnowledgeError(f"{where}: unknown concept {name!r}")
        implies.append(
            (
                str(code),
                str(implied),
                tuple(str(n) for n in body.get("with") or []),
                tuple(str(n) for n in body.get("unless") or []),
            )
        )

    vitals: dict[str, dict[int, list[Threshold]]] = {}
    for name, levels in (_load_yaml("vitals.yaml") or {}).items():
        if name not in VITAL_FIELDS:
            raise KnowledgeError(f"vitals.yaml: unknown vital sign {name!r}")
        vitals[name] = {
            int(lvl): [_parse_threshold(t, f"vitals.{name}.{lvl}") for t in conds] for lvl, conds in levels.items()
        }

    typos = _load_yaml("typos.yaml") or {}
    pinyin, pinyin_words, dialect = _load_variants(_load_yaml("variants.yaml") or {})
    typos_zh = sorted(((str(k), str(v)) for k, v in (typos.get("zh") or {}).items()), key=lambda kv: -len(kv[0]))
    typos_en: dict[str, str] = {}
    typo_phrases_en: list[tuple[re.Pattern[str], str]] = []
    for k, v in (typos.get("en") or {}).items():
        k, v = str(k).lower(), str(v).lower()
        if " " in k:
            typo_phrases_en.append((re.compile(r"\b" + re.escape(k) + r"\b"), v))
        else:
            typos_en[k] = v
    # Vocabulary for cheap spelling correction of English words (one edit, same first letter).
    en_vocab = frozenset(w for w in en_words if len(w) >= 4)
    en_deletes: dict[str, str] = {}
    ambiguous: set[str] = set()
    for word in sorted(en_vocab):
        if len(word) < 5:
            continue
        for d in {word, *_edits1_deletes(word)}:
            if d in en_deletes and en_deletes[d] != word:
                ambiguous.add(d)
            en_deletes.setdefault(d, word)
    for d in ambiguous:
        en_deletes.pop(d, None)

    icd_dept: dict[str, str] = {}
    icd_path = KNOWLEDGE_DIR / "icd_diseases.json"
    if icd_path.is_file():
        data = json.loads(icd_path.read_text("utf-8"))
        for code, names in data.get("departments", {}).items():
            if code not in DEPARTMENTS:
                raise KnowledgeError(f"icd_diseases.json: unknown department {code!r}")
            for name in names:
                if name not in semantic.terms:
                    icd_dept[name] = code
                    icd.add(name, Entry("icd", code))

    for index in (semantic, modifiers, cues, icd, overlay):
        index.finish()
    population = _load_yaml("population.yaml") or {}
    return Knowledge(
        semantic=semantic,
        modifiers=modifiers,
        cues=cues,
        icd=icd,
        concepts=concepts,
        compose=compose,
        orphans=orphans,
        flags=flags,
        compound_level_1=compound,
        compound_mild=compound_mild,
        vitals=vitals,
        population=population,
        typos_zh=typos_zh,
        typos_en=typos_en,
        typo_phrases_en=typo_phrases_en,
        en_vocab=en_vocab,
        en_common=frozenset(str(w).lower() for w in typos.get("en_common") or []),
        en_deletes=en_deletes,
        icd_dept=icd_dept,
        dept_alias=dept_alias,
        scope=scope,
        patterns=patterns,
        overlay=overlay,
        pinyin=pinyin,
        pinyin_words=pinyin_words,
        dialect=dialect,
        implies=implies,
        stats={
            "terms": len(semantic.terms),
            "modifier_terms": len(modifiers.terms),
            "icd_names": len(icd_dept),
            "concepts": len(concepts),
            "flag_rules": len(flags),
            "patterns": sum(p.pattern.count("|(?:") + 1 for _, p in patterns),
        },
    )
