"""The knowledge files load, are consistent, and the ICD table can be rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

from xinglin.triage import build_lexicon
from xinglin.triage.knowledge import KNOWLEDGE_DIR, load
from xinglin.triage.models import DEPARTMENTS, RED_FLAG_CODES


def test_knowledge_loads_and_covers_every_flag_code() -> None:
    kb = load()
    assert {r.code for r in kb.flags if r.code} | {"abnormal_vitals"} == set(RED_FLAG_CODES)
    assert kb.stats["icd_names"] > 10_000


def test_every_department_is_reachable() -> None:
    kb = load()
    reachable = {code for c in kb.concepts.values() for code in c.dept} | set(kb.dept_alias.values())
    assert set(DEPARTMENTS) - reachable == set()


def test_shipped_icd_table_is_small() -> None:
    path = KNOWLEDGE_DIR / "icd_diseases.json"
    assert path.stat().st_size < 2_000_000
    data = json.loads(path.read_text("utf-8"))
    assert set(data["departments"]) <= set(DEPARTMENTS)


def test_build_lexicon_on_a_small_list(tmp_path: Path) -> None:
    src = tmp_path / "icd"
    src.mkdir()
    (src / build_lexicon.CSV_NAME).write_text(
        "code,name\n"
        "I10,特发性(原发性)高血压\n"
        "E05,甲状腺毒症[甲状腺功能亢进症]\n"
        "K35,急性阑尾炎\n"
        "R51,头痛\n"
        "H40,青光眼\n"
        "J18.9,其他肺炎\n"
        "M814000/3,腺癌\n"
        "Z00,一般检查\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    assert build_lexicon.main([str(src), "--out", str(out)]) == 0
    data = json.loads(out.read_text("utf-8"))
    assert data["departments"] == {
        "03.04": ["特发性高血压"],
        "03.07": ["甲状腺功能亢进症", "甲状腺毒症"],
        "04.01": ["急性阑尾炎"],
        "19": ["腺癌"],
    }


def test_build_lexicon_missing_source(tmp_path: Path) -> None:
    assert build_lexicon.main([str(tmp_path)]) == 2


def test_a_cold_load_builds_the_same_knowledge() -> None:
    # start-up time is measured by benchmarks/triage_eval.py, not asserted here
    warm = load()
    load.cache_clear()
    cold = load()
    assert cold is not warm
    assert (len(cold.flags), cold.stats) == (len(warm.flags), warm.stats)
