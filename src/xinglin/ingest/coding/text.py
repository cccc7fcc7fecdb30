"""Text normalisation and segmentation for diagnosis coding.

Code-list names and free text go through the same ``normalise`` so that matching compares like with like.
Everything is deterministic and cheap (a few microseconds per string); OpenCC is optional.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

MAX_TEXT_CHARS = 500  # longer input is cut so one request cannot stall a worker

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE_BETWEEN_CJK = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_WS = re.compile(r"\s+")
# Brackets, quotes and dashes folded to one form each; separators kept as characters the segmenter knows.
_FOLD = str.maketrans(
    {
        "【": "[",
        "】": "]",
        "〔": "[",
        "〕": "]",
        "{": "(",
        "}": ")",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "—": "-",
        "–": "-",
        "－": "-",
        "～": "~",
        "。": ".",
        "、": "、",
        "·": ".",
        "•": ".",
    }
)
_CN_NUM = {"一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6"}
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8"}
# Type/stage/grade numerals: "II型", "Ⅱ型", "二型" and "2型" are one thing (both sides are normalised alike).
_ROMAN_BEFORE = re.compile(r"(?<![a-z])(viii|vii|vi|iv|v|iii|ii|i)(?=[型期度级类a-d]?(?:型|期|度|级|类|$|[^a-z]))")
_CN_BEFORE = re.compile(r"(?<![一二三四五六七八九十])([一二两三四五六])(?=[型期度级类])")


@lru_cache(maxsize=1)
def _t2s() -> Callable[[str], str] | None:
    try:
        import opencc
    except ImportError:  # optional: without it traditional characters are matched as they are
        return None
    return opencc.OpenCC("t2s").convert


def to_simplified(text: str) -> str:
    conv = _t2s()
    if conv is None or not _CJK.search(text):
        return text
    return conv(text)


def _roman(m: re.Match[str]) -> str:
    return _ROMAN[m.group(1)]


def normalise(text: str) -> str:
    """Fold width, case, traditional characters, brackets and type/stage numerals; spaces between CJK kept as one."""
    text = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).lower().translate(_FOLD)
    text = to_simplified(text)
    text = _WS.sub(" ", text).strip().strip('"').strip()
    text = _ROMAN_BEFORE.sub(_roman, text) if any(c in text for c in "iv") else text
    return _CN_BEFORE.sub(lambda m: _CN_NUM[m.group(1)], text)


def compact(text: str) -> str:
    """The matching form of a name or a text: normalised, without spaces."""
    return normalise(text).replace(" ", "")


# Explicit separators between diagnoses. "伴" / "并" / "合并" are not split here: they also occur inside names
# (慢性阻塞性肺疾病伴有急性加重); the learned tables and the re-ranker handle them.
_SEP = re.compile(
    r"[;,、\s/\\|?!:]+|\.(?!\d)|\(\d{1,2}\)|(?<![\d.])\d{1,2}[.、)](?!\d)"
    r"|(?:^|(?<=[\u4e00-\u9fff]))(?<![孕产第胸腰颈骶期度级])\d{1,2}(?=[\u4e00-\u9fff])(?![型期度级次周月天年个岁])"
)


def segments(text: str) -> list[str]:
    """Split a normalised text into diagnosis mentions on explicit separators (empty parts dropped)."""
    return [p for p in (s.strip("-~'\"").lstrip(")]").rstrip("([") for s in _SEP.split(text)) if p]


def bracket_variants(name: str) -> list[str]:
    """Matching forms of a compact name: the name, the name without bracketed parts, and each bracketed part.

    ``心房颤动[心房纤颤]`` -> ``心房颤动[心房纤颤]``, ``心房颤动``, ``心房纤颤``.
    """
    out = [name]
    if "[" in name or "(" in name:
        outer = re.sub(r"\[[^\]]*\]|\([^)]*\)", "", name)
        if outer and outer != name:
            out.append(outer)
        for inner in re.findall(r"\[([^\]]+)\]", name):
            for part in inner.split("/"):
                if len(part) >= 2:
                    out.append(part)
    return out
