"""Word lists shipped as package data, and a trie-to-regex helper to match them fast."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources


def _read_words(name: str) -> list[str]:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    words: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for word in line.split():
            if word not in seen:
                seen.add(word)
                words.append(word)
    return words


def trie_pattern(words: list[str]) -> str:
    """A regex alternation built as a prefix trie (longest alternative first).

    Python's ``re`` tries alternatives one by one; a flat alternation of a thousand words is
    slow on long texts, a trie touches only the branches sharing the current prefix.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict) -> str:
        end = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        if len(branches) == 1 and not end:
            return branches[0]
        single = [b for b in branches if len(b) == 1]
        multi = [b for b in branches if len(b) != 1]
        parts = list(multi)
        if len(single) == 1:
            parts.append(single[0])
        elif single:
            parts.append("[" + "".join(single) + "]")
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        if end:
            if len(parts) == 1 and len(body) == 1:
                return body + "?"
            return "(?:" + body + ")?"
        return body

    return build(trie)


@cache
def surnames() -> tuple[frozenset[str], tuple[str, ...]]:
    """(single-character surnames, compound surnames longest first)."""
    words = _read_words("surnames.txt")
    single = frozenset(w for w in words if len(w) == 1)
    compound = tuple(sorted((w for w in words if len(w) > 1), key=len, reverse=True))
    return single, compound


@cache
def core_medical_terms() -> tuple[str, ...]:
    """The hand-written protection list (eponyms, terms starting with a surname or place character)."""
    return tuple(_read_words("medical_terms.txt"))


@cache
def icd_names() -> tuple[str, ...]:
    """Disease names derived from the ICD-10 list, as shipped with triage (``icd_diseases.json``).

    About 20,000 names: too many to scan every text with (a trie regex over them is ten times
    slower than the rest of the engine), so they are matched only around name and place
    candidates (:func:`term_index`).  Empty when the triage knowledge is not installed.
    """
    try:
        ref = resources.files("xinglin.triage").joinpath("knowledge", "icd_diseases.json")
        data = json.loads(ref.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError, ValueError):
        return ()
    names = {n for group in data.get("departments", {}).values() for n in group}
    return tuple(sorted(n for n in names if len(n) >= 2 and any("\u4e00" <= c <= "\u9fff" for c in n)))


# ICD names of the form "<substance>中毒" name drugs and poisons (卡马西平中毒, 雷米封中毒): the
# substance alone is protected too (many drug names read like transliterated personal names).
_SUBSTANCE_SUFFIXES = ("的毒性效应", "药物反应", "中毒", "滥用", "依赖")


@cache
def substances() -> tuple[str, ...]:
    """Drug and poison names cut from the ICD-derived disease names."""
    out: dict[str, None] = {}
    for name in icd_names():
        for suffix in _SUBSTANCE_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                out[name[: -len(suffix)]] = None
                break
    return tuple(out)


@cache
def medical_terms() -> tuple[str, ...]:
    """Every protected medical term: the hand-written list, the ICD-derived names, substances."""
    return tuple(dict.fromkeys(core_medical_terms() + icd_names() + substances()))


@cache
def places() -> tuple[str, ...]:
    return tuple(_read_words("places.txt"))


@cache
def medical_regex() -> re.Pattern[str]:
    """The hand-written list, scanned over whole texts (also a tagger feature)."""
    return re.compile(trie_pattern(list(core_medical_terms())))


ICD_LOOKBACK = 12  # an ICD name is looked for starting up to this many characters before a candidate


@cache
def term_index() -> tuple[frozenset[str], dict[str, tuple[int, ...]]]:
    """(every protected term, two-character prefix -> lengths of the terms starting with it,
    longest first): one dict look-up rejects most positions."""
    by_prefix: dict[str, set[int]] = {}
    terms = frozenset(t for t in medical_terms() if len(t) >= 2)
    for term in terms:
        by_prefix.setdefault(term[:2], set()).add(len(term))
    return terms, {p: tuple(sorted(ls, reverse=True)) for p, ls in by_prefix.items()}


@cache
def prefix_keys():
    """The two-character prefixes of :func:`term_index` as sorted uint64 keys (code << 32 | code),
    for a vectorised ``searchsorted`` over a whole text."""
    import numpy as np

    _, prefixes = term_index()
    keys = sorted((ord(p[0]) << 32) | ord(p[1]) for p in prefixes if len(p) == 2)
    return np.array(keys, dtype=np.uint64)


@cache
def place_regex() -> re.Pattern[str]:
    return re.compile(trie_pattern(list(places())))


@cache
def compound_regex() -> re.Pattern[str]:
    return re.compile(trie_pattern(list(surnames()[1])))


class Matcher:
    """Leftmost-longest, non-overlapping matches of a word list (every word two characters or
    more): the same spans as ``finditer`` of the word list's :func:`trie_pattern`, found with
    one dict look-up per position (short texts) or a vectorised search of the two-character
    prefixes (long texts) instead of trying a thousand-branch alternation at every character."""

    __slots__ = ("_keys", "_prefixes", "_words")

    _VECTOR_FROM = 256  # characters

    def __init__(self, words: tuple[str, ...] | list[str]) -> None:
        import numpy as np

        if any(len(w) < 2 for w in words):
            raise ValueError("Matcher words must have two characters or more")
        self._words = frozenset(words)
        by_prefix: dict[str, set[int]] = {}
        for w in self._words:
            by_prefix.setdefault(w[:2], set()).add(len(w))
        self._prefixes = {p: tuple(sorted(ls, reverse=True)) for p, ls in by_prefix.items()}
        keys = sorted((ord(p[0]) << 32) | ord(p[1]) for p in self._prefixes)
        self._keys = np.array(keys, dtype=np.uint64)

    def spans(self, text: str) -> list[tuple[int, int]]:
        prefixes = self._prefixes
        if len(text) < self._VECTOR_FROM:
            starts: list[int] | range = range(len(text) - 1)
        else:
            import numpy as np

            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            pairs = (codes[:-1] << np.uint64(32)) | codes[1:]
            keys = self._keys
            at = np.minimum(np.searchsorted(keys, pairs), len(keys) - 1)
            starts = np.flatnonzero(keys[at] == pairs).tolist()
        words = self._words
        n = len(text)
        out: list[tuple[int, int]] = []
        last = 0
        for pos in starts:
            if pos < last:
                continue
            lengths = prefixes.get(text[pos : pos + 2])
            if lengths is None:
                continue
            for length in lengths:  # longest first
                if pos + length <= n and text[pos : pos + length] in words:
                    out.append((pos, pos + length))
                    last = pos + length
                    break
        return out


@cache
def medical_matcher() -> Matcher:
    return Matcher(core_medical_terms())


@cache
def place_matcher() -> Matcher:
    return Matcher(places())


@cache
def compound_matcher() -> Matcher:
    return Matcher(surnames()[1])


def medical_spans(text: str) -> list[tuple[int, int]]:
    """Matches of the hand-written medical list: the trie regex on short texts (as fast there),
    the :class:`Matcher` on long ones (same spans, three times faster)."""
    if len(text) < Matcher._VECTOR_FROM:
        return [m.span() for m in medical_regex().finditer(text)]
    return medical_matcher().spans(text)


def place_spans(text: str) -> list[tuple[int, int]]:
    """Matches of the place gazetteer (as :func:`medical_spans`)."""
    if len(text) < Matcher._VECTOR_FROM:
        return [m.span() for m in place_regex().finditer(text)]
    return place_matcher().spans(text)
