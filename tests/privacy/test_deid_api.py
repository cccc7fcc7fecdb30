"""POST /api/deid: the engine over HTTP, authenticated and audited."""

from sqlalchemy import select

from xinglin.store.models import audit_record


def test_deid_endpoint_masks_and_audits(client, hospital, database):
    text = "患者王建国，电话13812345678，于2024年3月5日就诊。"
    r = client.post("/api/deid", json={"text": text}, headers=hospital.headers("physician", username="dr-deid"))
    assert r.status_code == 200
    body = r.json()
    assert "13812345678" not in body["masked"]
    assert "王建国" not in body["masked"]
    assert "[PHONE]" in body["masked"]
    types = [e["type"] for e in body["entities"]]
    assert {"PERSON", "PHONE", "DATE"} <= set(types)
    for e in body["entities"]:
        assert 0 <= e["start"] < e["end"] <= len(text)
    with database.engine.connect() as conn:
        details = (
            conn.execute(
                select(audit_record.c.detail).where(
                    audit_record.c.tenant_id == hospital.id, audit_record.c.action == "deid"
                )
            )
            .scalars()
            .all()
        )
    assert details == [f"{len(text)} characters, {len(body['entities'])} entities"]


def test_deid_endpoint_needs_a_token_and_valid_input(client, hospital):
    assert client.post("/api/deid", json={"text": "x"}).status_code == 401
    r = client.post("/api/deid", json={"txt": "x"}, headers=hospital.headers())
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["text"]
    r = client.post("/api/deid", json={"text": "x", "mode": "scramble"}, headers=hospital.headers())
    assert r.status_code == 400
