"""Diagnosis coder on the full v601 list: common diagnoses, splitting, normalisation, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xinglin.ingest.coding.coder import DiagnosisCoder, IndexFormatError, pack_strs, unpack_strs
from xinglin.ingest.coding.codeset import Concept
from xinglin.ingest.coding.text import bracket_variants, compact, normalise, segments

COMMON = [
    ("高血压", "I10xx02", "高血压"),
    ("2型糖尿病", "E11.901", "2型糖尿病"),
    ("冠心病", "I25.105", "冠状动脉粥样硬化性心脏病"),
    ("肺炎", "J18.901", "肺炎"),
    ("慢性阻塞性肺疾病急性加重", "J44.101", "慢性阻塞性肺疾病急性加重"),
    ("房颤", "I48xx04", "心房颤动[心房纤颤]"),
    ("脑梗死", "I63.902", "脑梗死"),
    ("骨质疏松", "M81.991", "骨质疏松"),
    ("不稳定心绞痛", "I20.001", "不稳定性心绞痛"),
    ("上呼吸道感染", "J06.903", "上呼吸道感染"),
    ("高脂血症", "E78.501", "高脂血症"),
    ("急性阑尾炎", "K35.901", "急性阑尾炎"),
    ("缺铁性贫血", "D50.902", "缺铁性贫血"),
    ("支气管哮喘", "J45.901", "支气管哮喘"),
    ("慢阻肺", "J44.901", "慢性阻塞性肺疾病"),
]


@pytest.mark.parametrize(("text", "code", "name"), COMMON)
def test_common_diagnoses(coder: DiagnosisCoder, text: str, code: str, name: str) -> None:
    found = coder.code(text)
    assert found, text
    assert (found[0].code, found[0].name) == (code, name)
    assert 0 < found[0].score <= 1


@pytest.mark.parametrize("text", ["Ⅱ型糖尿病", "II型糖尿病", "二型糖尿病", "２型糖尿病", "2型糖尿病 "])
def test_type_numerals_and_width(coder: DiagnosisCoder, text: str) -> None:
    assert coder.code(text)[0].code == "E11.901"


def test_traditional_chinese(coder: DiagnosisCoder) -> None:
    assert coder.code("高血壓")[0].code == "I10xx02"


def test_five_diagnoses_in_one_string(coder: DiagnosisCoder) -> None:
    found = coder.code("糖尿病反复低血糖;骨质疏松;高血压冠心病不稳定心绞痛")
    assert {d.name for d in found} >= {
        "糖尿病性低血糖症",
        "骨质疏松",
        "高血压",
        "冠状动脉粥样硬化性心脏病",
        "不稳定性心绞痛",
    }
    assert len(found) <= 7
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


def test_separators_split_without_learned_pairs(coder: DiagnosisCoder) -> None:
    found = {d.code for d in coder.code("肺炎，高血压、2型糖尿病 缺铁性贫血")}
    assert found >= {"J18.901", "I10xx02", "E11.901", "D50.902"}


def test_nothing_certain_gives_top_k_suggestions(coder: DiagnosisCoder) -> None:
    assert coder.code("") == []
    assert coder.code("   ") == []
    found = coder.code("xyz qqq", top_k=3)
    assert len(found) <= 3
    assert all(d.score < coder.model.threshold for d in found)
    assert coder.code("xyz qqq", top_k=0) == []


def test_dump_load_round_trip(coder: DiagnosisCoder, index_path: Path) -> None:
    loaded = DiagnosisCoder.load(index_path)
    assert loaded.concepts == coder.concepts
    texts = [t for t, _, _ in COMMON] + [
        "糖尿病反复低血糖;骨质疏松;高血压冠心病不稳定心绞痛",
        "右乳腺癌IV期",
        "左膝退变伴游离体",
    ]
    for t in texts:
        assert [d.to_dict() for d in loaded.code(t)] == [d.to_dict() for d in coder.code(t)]
    assert index_path.stat().st_size < 30_000_000


def test_load_rejects_bad_files(tmp_path: Path, index_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(IndexFormatError):
        DiagnosisCoder.load(junk)
    with pytest.raises(IndexFormatError):
        DiagnosisCoder.load(tmp_path / "missing.npz")
    # a well-formed archive with a broken array: caught on load, not while coding
    with np.load(index_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["model_pt_targets"] = arrays["model_pt_targets"] + 10_000_000
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    with pytest.raises(IndexFormatError, match="not a valid"):
        DiagnosisCoder.load(broken)
    # an index of an older format: a clear instruction to rebuild it
    with np.load(index_path, allow_pickle=False) as z:
        old = {k: z[k] for k in z.files}
    meta = json.loads(unpack_strs(old["meta"])[0])
    old["meta"] = pack_strs([json.dumps({**meta, "format": "xinglin-dx-index/2"})])
    older = tmp_path / "older.npz"
    np.savez(older, **old)
    with pytest.raises(IndexFormatError) as caught:
        DiagnosisCoder.load(older)
    assert caught.value.en == (
        "older.npz: the index was built by an older Xinglin (xinglin-dx-index/2); load the code set again with "
        "`xinglin codes load`"
    )
    # object arrays would need pickle: refused
    arrays["codes"] = np.array([object()], dtype=object)
    np.savez(broken, **arrays)
    with pytest.raises(IndexFormatError):
        DiagnosisCoder.load(broken)


def test_a_list_of_its_own(tmp_path: Path) -> None:
    """Another code list (national clinical 2.0 style codes): learned tables resolve by name."""
    concepts = [
        Concept("I10.x00x002", "高血压"),
        Concept("I25.103", "冠状动脉粥样硬化性心脏病"),
        Concept("E11.900", "2型糖尿病"),
        Concept("J18.900", "肺炎"),
    ]
    small = DiagnosisCoder.build(concepts)
    assert [d.code for d in small.code("高血压；冠心病")] == ["I10.x00x002", "I25.103"]
    small.dump(tmp_path / "small.npz")
    assert [d.code for d in DiagnosisCoder.load(tmp_path / "small.npz").code("肺炎")] == ["J18.900"]


def test_most_specific_code_for_a_shared_name() -> None:
    coder = DiagnosisCoder.build([Concept("M81.9", "骨质疏松"), Concept("M81.991", "骨质疏松"), Concept("A00", "霍乱")])
    assert coder.code("骨质疏松")[0].code == "M81.991"


def test_text_helpers() -> None:
    assert normalise("Ⅱ型糖尿病（右）") == "2型糖尿病(右)"
    assert compact("高 血 压") == "高血压"
    assert segments(normalise("头痛.头晕.高血压")) == ["头痛", "头晕", "高血压"]
    assert segments(normalise("1左先天性睑下垂2右下肢肌萎缩待查")) == ["左先天性睑下垂", "右下肢肌萎缩待查"]
    assert segments(normalise("(1)高血压(2)糖尿病")) == ["高血压", "糖尿病"]
    assert bracket_variants("心房颤动[心房纤颤]") == ["心房颤动[心房纤颤]", "心房颤动", "心房纤颤"]
