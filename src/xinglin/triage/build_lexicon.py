"""Build the disease-name → clinic table shipped with the triage engine.

    python -m xinglin.triage.build_lexicon /path/to/icd10-cn [--out FILE]

Reads ``icd10-beijing-clinical-v601.csv`` (``code,name``) from the folder, maps every code to a
clinic with the hand-written block table ``knowledge/icd_blocks.yaml`` and writes the short, patient-
usable names to ``knowledge/icd_diseases.json`` (a few hundred kB). The product reads only that JSON:
the ICD list itself is not needed at run time. Run it again when the block table or the list changes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

KNOWLEDGE = Path(__file__).parent / "knowledge"
CSV_NAME = "icd10-beijing-clinical-v601.csv"
MIN_LEN, MAX_LEN = 2, 10
# Names that describe a coding situation rather than a disease a patient would name.
SKIP_WORDS = (
    "其他",
    "未特指",
    "不可归类",
    "未分类",
    "性质未明",
    "由于",
    "所致",
    "引起",
    "伴有",
    "伴",
    "并发",
    "个人史",
    "家族史",
    "疑似",
    "待查",
    "观察",
    "未知",
    "不明",
    "部位",
    "多处",
    "多部位",
)
CATEGORY = re.compile(r"^([A-Z])(\d\d)")
MORPHOLOGY = re.compile(r"^M\d{4,}/(\d)")
NAME_OK = re.compile(r"[\u4e00-\u9fff0-9a-z]+")
# Two-character names are kept only when they end like a disease ("肺炎", "丹毒"); others ("情感",
# "第二") are fragments that would match ordinary words.
SHORT_SUFFIX = set("炎病症癌瘤疹疮疝癣痛瘫盲痣疣瘘虱痘疫疽痱秃裂肺胸喉吃热毒")


def _range_key(code: str) -> tuple[str, int]:
    return code[0], int(code[1:3])


class BlockMap:
    """Code → department from the hand-written block table."""

    def __init__(self, table: dict[str, Any]):
        self.codes: dict[str, str] = {str(k): str(v) for k, v in (table.get("codes") or {}).items()}
        self.blocks: list[tuple[tuple[str, int], tuple[str, int], str]] = []
        for rng, dept in (table.get("blocks") or {}).items():
            lo, hi = str(rng).split("-")
            self.blocks.append((_range_key(lo), _range_key(hi), str(dept)))
        self.skip_letters = {s for s in table.get("skip", []) if len(s) == 1}
        self.skip_ranges = [
            (_range_key(s.split("-")[0]), _range_key(s.split("-")[1])) for s in table.get("skip", []) if "-" in s
        ]
        self.stop_names = set(table.get("stop_names", []))

    def department(self, code: str) -> str | None:
        morph = MORPHOLOGY.match(code)
        if morph:  # ICD-O morphology: /3 malignant primary, /6 metastatic
            return "19" if morph.group(1) in {"3", "6"} else None
        m = CATEGORY.match(code)
        if not m:
            return None
        letter, num = m.group(1), int(m.group(2))
        if letter in self.skip_letters:
            return None
        key = (letter, num)
        if any(lo <= key <= hi for lo, hi in self.skip_ranges):
            return None
        if m.group(0) in self.codes:
            return self.codes[m.group(0)]
        for lo, hi, dept in self.blocks:
            if lo <= key <= hi:
                return dept
        return None


def name_variants(raw: str, stop_names: set[str]) -> list[str]:
    """Patient-usable forms of one ICD name: brackets give synonyms, parentheses are optional words."""
    name = unicodedata.normalize("NFKC", raw).lower().strip().replace(" ", "")
    synonyms = re.findall(r"\[([^\]]+)\]", name)
    base = re.sub(r"\[[^\]]*\]", "", name)
    out: list[str] = []
    for cand in [base, *synonyms]:
        cand = re.sub(r"\([^)]*\)", "", cand).strip()
        if not cand or any(w in cand for w in SKIP_WORDS):
            continue
        if not NAME_OK.fullmatch(cand) or not (MIN_LEN <= len(cand) <= MAX_LEN):
            continue
        if cand.isdigit() or cand in stop_names or not re.search(r"[\u4e00-\u9fff]", cand):
            continue
        if cand.endswith("性") or (len(cand) == 2 and cand[-1] not in SHORT_SUFFIX):
            continue
        out.append(cand)
    return out


def hand_terms() -> set[str]:
    """Terms of the hand-written lexicon: those win, so the derived table need not repeat them."""
    data = yaml.load((KNOWLEDGE / "lexicon.yaml").read_text("utf-8"), Loader=yaml.CSafeLoader)
    terms: set[str] = set()
    for section in ("parts", "qualities", "concepts", "modifiers"):
        for entry in (data.get(section) or {}).values():
            terms.update(str(t) for t in entry.get("zh", []))
    return terms


def build(source: Path) -> dict[str, Any]:
    table = yaml.load((KNOWLEDGE / "icd_blocks.yaml").read_text("utf-8"), Loader=yaml.CSafeLoader)
    blocks = BlockMap(table)
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    rows = 0
    with (source / CSV_NAME).open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            rows += 1
            code, name = (row.get("code") or "").strip(), (row.get("name") or "").strip()
            dept = blocks.department(code)
            if not dept or not name:
                continue
            for variant in name_variants(name, blocks.stop_names):
                votes[variant][dept] += 1
    skip = hand_terms()
    by_dept: dict[str, list[str]] = defaultdict(list)
    for name, counter in votes.items():
        if name in skip:
            continue
        by_dept[counter.most_common(1)[0][0]].append(name)
    return {
        "about": "Disease names derived from an ICD-10 list by xinglin.triage.build_lexicon; "
        "department codes from knowledge/icd_blocks.yaml.",
        "source_rows": rows,
        "names": sum(len(v) for v in by_dept.values()),
        "departments": {k: sorted(v) for k, v in sorted(by_dept.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help=f"folder containing {CSV_NAME}")
    parser.add_argument("--out", type=Path, default=KNOWLEDGE / "icd_diseases.json")
    args = parser.parse_args(argv)
    if not (args.source / CSV_NAME).is_file():
        print(f"找不到 {CSV_NAME} / {CSV_NAME} not found in {args.source}", file=sys.stderr)
        return 2
    data = build(args.source)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(
        json.dumps(
            {"rows": data["source_rows"], "names": data["names"], "bytes": len(text.encode()), "out": str(args.out)},
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
