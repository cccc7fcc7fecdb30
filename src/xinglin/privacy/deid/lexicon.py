"""Word lists shipped as package data, and a trie-to-regex helper to match them fast."""

from __future__ import annotations

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
def medical_terms() -> tuple[str, ...]:
    return tuple(_read_words("medical_terms.txt"))


@cache
def places() -> tuple[str, ...]:
    return tuple(_read_words("places.txt"))


@cache
def medical_regex() -> re.Pattern[str]:
    return re.compile(trie_pattern(list(medical_terms())))


@cache
def place_regex() -> re.Pattern[str]:
    return re.compile(trie_pattern(list(places())))


@cache
def compound_regex() -> re.Pattern[str]:
    return re.compile(trie_pattern(list(surnames()[1])))
