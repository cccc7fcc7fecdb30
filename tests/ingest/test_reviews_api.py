"""The patient-match review queue over HTTP: /api/ingest/reviews."""

from __future__ import annotations

from sqlalchemy import select

from xinglin.ingest.service import ingest
from xinglin.store.models import audit_record
from xinglin.store.repository import Store

HEADER = "姓名,性别,出生日期,身份证号,手机"


def _review_pending(database, hospital, tmp_path) -> None:
    """Two files with 张伟 and 章玮 (same birth date and sex, names alike in pinyin): one open review."""
    store = Store(database.engine, database.settings)
    for name, row in (("a.csv", "张伟,男,1980-02-02,,13811112222"), ("c.csv", "章玮,男,1980-02-02,,")):
        (tmp_path / name).write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
        ingest(store, hospital.code, [tmp_path / name])


def test_list_and_merge_through_the_api(client, database, hospital, tmp_path):
    _review_pending(database, hospital, tmp_path)
    h = hospital.headers("registrar", username="reg-zhou")
    listed = client.get("/api/ingest/reviews", headers=h)
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 1
    (review,) = body["reviews"]
    assert (review["status"], review["score"], review["evidence"], review["origin"]) == (
        "requested",
        0.6,
        ["name_pinyin", "birth_date", "sex"],
        "c.csv row 2",
    )
    existing, new = review["candidates"]

    r = client.post(f"/api/ingest/reviews/{review['task_id']}", json={"decision": "merge", "keep": new}, headers=h)
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["decision"]) == ("completed", "merged")
    admin = hospital.headers("admin")
    kept = client.get(f"/fhir/R4/Patient/{new}", headers=admin).json()
    other = client.get(f"/fhir/R4/Patient/{existing}", headers=admin).json()
    assert {"other": {"reference": f"Patient/{existing}"}, "type": "replaces"} in kept["link"]
    assert other["active"] is False
    assert other["link"] == [{"other": {"reference": f"Patient/{new}"}, "type": "replaced-by"}]

    assert client.get("/api/ingest/reviews", headers=h).json() == {"total": 0, "reviews": []}
    assert client.get("/api/ingest/reviews?status=all", headers=h).json()["total"] == 1
    again = client.post(f"/api/ingest/reviews/{review['task_id']}", json={"decision": "separate"}, headers=h)
    assert again.status_code == 409
    assert again.json()["issue"][0]["diagnostics"] == f"Task/{review['task_id']} is already completed"

    # the merge is audited as Xinglin acting for the registrar who decided
    with database.engine.connect() as conn:
        who = set(
            conn.execute(
                select(audit_record.c.principal).where(
                    audit_record.c.tenant_id == hospital.id,
                    audit_record.c.action == "update",
                    audit_record.c.resource_id.in_([new, existing]),
                )
            ).scalars()
        )
    assert who == {"system:patient-match review for registrar:reg-zhou"}


def test_review_api_refuses_other_roles_and_bad_input(client, database, hospital, tmp_path):
    _review_pending(database, hospital, tmp_path)
    r = client.get("/api/ingest/reviews", headers=hospital.headers("physician"))
    assert r.status_code == 403
    assert r.json()["issue"][0]["diagnostics"] == (
        "Only registration staff and administrators may handle patient-match reviews"
    )
    assert client.get("/api/ingest/reviews").status_code == 401
    h = hospital.headers("admin")
    bad_status = client.get("/api/ingest/reviews?status=open", headers=h)
    assert bad_status.status_code == 400
    assert bad_status.json()["issue"][0]["expression"] == ["status"]
    (review,) = client.get("/api/ingest/reviews", headers=h).json()["reviews"]
    bad_decision = client.post(f"/api/ingest/reviews/{review['task_id']}", json={"decision": "maybe"}, headers=h)
    assert bad_decision.status_code == 400
    assert bad_decision.json()["issue"][0]["expression"] == ["decision"]
    stranger = client.post(
        f"/api/ingest/reviews/{review['task_id']}", json={"decision": "merge", "keep": "someone-else"}, headers=h
    )
    assert stranger.status_code == 400
    assert stranger.json()["issue"][0]["diagnostics"] == "keep must be one of the candidates"
    unknown = client.post("/api/ingest/reviews/no-such-task", json={"decision": "separate"}, headers=h)
    assert unknown.status_code == 404
