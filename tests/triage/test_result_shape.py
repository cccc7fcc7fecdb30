"""The JSON shape of a result (issue #3) and argument checking."""

from __future__ import annotations

import json

import pytest

from xinglin.triage import TriageInputError, assess, check_request

ISSUE_KEYS = {
    "department",
    "alternatives",
    "level",
    "level_name",
    "max_wait_minutes",
    "red_flags",
    "escalate",
    "explanation",
    "generated_by",
}


def test_shape() -> None:
    data = assess("胸口疼，出冷汗", age=60, sex="male").to_dict()
    assert set(data) >= ISSUE_KEYS
    assert set(data) - ISSUE_KEYS == {"explanation_en", "warnings", "label", "disclaimer"}
    assert data["department"] == {"code": "03.04", "name": "心血管内科", "name_en": "Cardiology"}
    assert len(data["alternatives"]) == 2
    for alt in data["alternatives"]:
        assert set(alt) == {"code", "name", "name_en", "score"}
        assert isinstance(alt["score"], float) and 0.0 <= alt["score"] <= 1.0
    assert (data["level"], data["level_name"], data["max_wait_minutes"]) == (2, "急重", 10)
    assert data["red_flags"] == [{"code": "chest_pain_acs", "evidence": "胸口疼 + 出冷汗"}]
    assert data["escalate"] is True
    assert data["generated_by"] == "xinglin-triage 0.1"
    assert set(data["label"]) == {"zh", "en"} and "不是诊断" in data["label"]["zh"]
    json.dumps(data, ensure_ascii=False)  # serialisable


def test_result_is_frozen() -> None:
    result = assess("头疼")
    with pytest.raises(AttributeError):
        result.level = 1  # type: ignore[misc]


def test_never_a_drug_name_in_output() -> None:
    data = assess("高血压能吃党参吗？").to_dict()
    assert data["department"]["code"] == "03.04"
    assert "处方" in data["label"]["zh"]


def test_deterministic() -> None:
    a = assess("胸口疼，出冷汗，头晕", age=65).to_dict()
    b = assess("胸口疼，出冷汗，头晕", age=65).to_dict()
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"age": -1}, "age"),
        ({"age": 200}, "age"),
        ({"age": "old"}, "age"),
        ({"age": True}, "age"),
        ({"sex": "robot"}, "sex"),
        ({"pregnant": "maybe"}, "pregnant"),
        ({"vitals": [1, 2]}, "vitals"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(TriageInputError) as info:
        assess("头疼", **kwargs)
    assert info.value.field == field
    assert info.value.to_dict()["field"] == field


def test_sex_codes() -> None:
    assert assess("下腹疼", sex="2").department.code == "05.01"
    assert assess("下腹疼", sex="男").department.code != "05.01"


def test_check_request() -> None:
    assert check_request({"text": "头疼", "age": "30", "vitals": {"spo2": 97}}) == {
        "text": "头疼",
        "age": 30.0,
        "sex": None,
        "pregnant": None,
        "vitals": {"spo2": 97.0},
    }
    with pytest.raises(TriageInputError) as info:
        check_request({"text": "头疼", "colour": "red"})
    assert info.value.field == "colour"
    with pytest.raises(TriageInputError) as info:
        check_request({"text": 5})
    assert info.value.field == "text"


def test_alternative_scores_follow_their_rank():
    from xinglin.triage import assess

    for text, age in [("胸口疼得厉害，出冷汗，左胳膊发麻", 58), ("孩子发烧39度，抽搐不停", 3), ("肚子疼拉肚子", 30)]:
        scores = [a["score"] for a in assess(text, age=age).to_dict()["alternatives"]]
        assert scores == sorted(scores, reverse=True), text
