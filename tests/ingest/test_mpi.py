"""Master patient index: matches by ID number and by name + birth date + phone, reviews for near-matches."""

from __future__ import annotations

from datetime import date

import pytest

from tests.ingest.samples import ID_WANG
from xinglin.core.errors import Conflict
from xinglin.ingest.mpi import Candidate, Person, list_reviews, resolve_review, score
from xinglin.ingest.normalise import normalise_name, normalise_sex
from xinglin.ingest.service import ingest
from xinglin.security.principal import system_principal
from xinglin.store.repository import Store

HEADER = "姓名,性别,出生日期,身份证号,手机"


def _csv(tmp_path, name: str, *rows: str):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _store(database) -> Store:
    return Store(database.engine, database.settings)


def _repo(database, hospital):
    return _store(database).unit_of_work(system_principal(hospital.id, hospital.code))


def _patients(database, hospital) -> list[dict]:
    with _repo(database, hospital) as repo:
        return [m.as_dict() for m in repo.search("Patient", [("_count", "100")]).matches]


def test_score_weights():
    cand = Candidate.from_body(
        {"id": "a", "name": [{"text": "张伟"}], "birthDate": "1980-02-02", "gender": "male",
         "telecom": [{"system": "phone", "value": "13811112222"}]},
        stored=True,
    )  # fmt: skip
    male = normalise_sex("男")
    full = Person(normalise_name("張偉"), date(1980, 2, 2), male, ("13811112222",))
    assert score(full, cand) == (1.0, ["name", "birth_date", "sex", "phone"])
    assert score(Person(normalise_name("张伟"), date(1980, 2, 2), None, ("13811112222",)), cand)[0] == 0.9
    assert score(Person(normalise_name("章玮"), date(1980, 2, 2), male), cand) == (
        0.6,
        ["name_pinyin", "birth_date", "sex"],
    )
    assert score(Person(normalise_name("张伟"), date(1980, 2, 3), male, ("13811112222",)), cand)[0] == 0.5
    assert score(Person(normalise_name("张伟"), None, None, (), ID_WANG), cand)[0] == 0.35
    cand.identifiers.add(("urn:oid:2.16.156.10011.1.1", "44030519850312001X"))
    assert score(Person(normalise_name("张伟"), date(1980, 2, 2), male, (), ID_WANG), cand) == (
        0.0,
        ["id_number_differs"],
    )


def test_match_by_id_number_across_sources(database, hospital, tmp_path):
    store = _store(database)
    a = ingest(store, hospital.code, [_csv(tmp_path, "a.csv", f"王小红,女,1990-05-17,{ID_WANG},13900000001")])
    b = ingest(store, hospital.code, [_csv(tmp_path, "b.csv", f"王晓红,F,,{ID_WANG.lower()},")])
    assert (a.patients_created, b.patients_created, b.patients_matched, b.rows_matched) == (1, 0, 1, 1)
    assert b.patients_updated == 1  # source b's identifier linked onto the Patient
    (p,) = _patients(database, hospital)
    systems = sorted(i["system"] for i in p["identifier"])
    assert systems == [
        "https://xinglin.dev/ingest/source/a", "https://xinglin.dev/ingest/source/b", "urn:oid:2.16.156.10011.1.1"
    ]  # fmt: skip
    assert p["name"][0]["text"] == "王小红"  # the first source's demographics are not overwritten


def test_match_by_name_birth_date_and_phone(database, hospital, tmp_path):
    store = _store(database)
    ingest(store, hospital.code, [_csv(tmp_path, "a.csv", "张伟,男,1980-02-02,,13811112222")])
    b = ingest(store, hospital.code, [_csv(tmp_path, "b.csv", "張偉,,1980年2月2日,,+86 138 1111 2222")])
    assert (b.patients_created, b.patients_matched, b.reviews_created) == (0, 1, 0)
    assert len(_patients(database, hospital)) == 1


def test_near_match_goes_to_review_and_merge(database, hospital, tmp_path):
    store = _store(database)
    ingest(store, hospital.code, [_csv(tmp_path, "a.csv", "张伟,男,1980-02-02,,13811112222")])
    c = ingest(store, hospital.code, [_csv(tmp_path, "c.csv", "章玮,男,1980-02-02,,")])
    assert (c.patients_created, c.patients_matched, c.reviews_created, c.rows_stored) == (1, 0, 1, 1)
    with _repo(database, hospital) as repo:
        (review,) = list_reviews(repo)
    pats = {p["id"]: p for p in _patients(database, hospital)}
    assert len(pats) == 2
    existing, new = review.candidates
    assert pats[existing]["name"][0]["text"] == "张伟" and pats[new]["name"][0]["text"] == "章玮"
    assert (review.score, review.evidence, review.status) == (0.6, ["name_pinyin", "birth_date", "sex"], "requested")
    assert review.origin == "c.csv row 2"

    with _repo(database, hospital) as repo:
        done = resolve_review(repo, review.task_id, "merge")
    assert (done.status, done.decision) == ("completed", "merged")
    pats = {p["id"]: p for p in _patients(database, hospital)}
    kept, other = pats[existing], pats[new]
    assert {"other": {"reference": f"Patient/{new}"}, "type": "replaces"} in kept["link"]
    assert other["link"] == [{"other": {"reference": f"Patient/{existing}"}, "type": "replaced-by"}]
    assert other["active"] is False
    assert "https://xinglin.dev/ingest/source/c" in {i["system"] for i in kept["identifier"]}
    with _repo(database, hospital) as repo:
        assert list_reviews(repo) == []
        assert [r.decision for r in list_reviews(repo, status=None)] == ["merged"]
        with pytest.raises(Conflict):
            resolve_review(repo, review.task_id, "separate")
    # the same source again now lands on the kept Patient, silently and without a new review
    again = ingest(store, hospital.code, [_csv(tmp_path, "c.csv", "章玮,男,1980-02-02,,")])
    assert (again.patients_created, again.reviews_created, again.rows_matched, again.resources_written) == (0, 0, 1, 0)


def test_review_kept_separate(database, hospital, tmp_path):
    store = _store(database)
    ingest(store, hospital.code, [_csv(tmp_path, "a.csv", "李娜,女,1975-07-07,,")])
    r = ingest(store, hospital.code, [_csv(tmp_path, "b.csv", "李娜,女,1975-07-07,,13500000000")])
    assert r.reviews_created == 1  # name + birth date + sex = 0.75: not enough to merge silently
    with _repo(database, hospital) as repo:
        (review,) = list_reviews(repo)
        done = resolve_review(repo, review.task_id, "separate")
    assert done.decision == "kept-separate"
    assert all("link" not in p and p["active"] for p in _patients(database, hospital))


def test_different_id_numbers_never_match(database, hospital, tmp_path):
    store = _store(database)
    ingest(store, hospital.code, [_csv(tmp_path, "a.csv", f"王小红,女,1990-05-17,{ID_WANG},13900000001")])
    r = ingest(store, hospital.code, [_csv(tmp_path, "b.csv", "王小红,女,1990-05-17,110101199005170040,13900000001")])
    assert (r.patients_created, r.patients_matched, r.reviews_created) == (1, 0, 0)
