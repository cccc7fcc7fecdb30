"""The whole online follow-up consult, from the patient's request to delivery and the closing summary."""

import base64

from tests.telehealth.conftest import FHIR, PNG


def test_happy_path(world, client, hospital):
    # the patient, who consented and saw a doctor in person, asks for a follow-up
    requested = world.request(reason="血压控制复诊")
    cid = requested["id"]
    assert requested["state"] == "requested"
    assert requested["follow_up_of"] == f"Encounter/{world.visit}"
    enc = requested["encounter"]
    assert enc["class"]["code"] == "VR"
    assert enc["status"] == "planned"

    # it waits in the cardiology queue
    queue = client.get("/api/consults?queue=03.04", headers=world.physician()).json()
    assert cid in [c["id"] for c in queue["consults"]]
    assert cid not in [
        c["id"] for c in client.get("/api/consults?queue=03.01", headers=world.physician()).json()["consults"]
    ]

    # the physician re-authenticates by real name and accepts
    confirmed = world.confirm(cid)
    assert confirmed.status_code == 200
    assert confirmed.json()["expires"]
    accepted = client.post(f"/api/consults/{cid}/accept", headers=world.physician()).json()
    assert accepted["state"] == "in-progress"
    assert accepted["physician"] == f"Practitioner/{world.practitioner}"
    assert cid not in [
        c["id"] for c in client.get("/api/consults?queue=03.04", headers=world.physician()).json()["consults"]
    ]

    # messages both ways, one with an image
    r = client.post(
        f"/api/consults/{cid}/messages", json={"text": "医生您好，最近血压 135/85"}, headers=world.patient_headers()
    )
    assert r.status_code == 201
    assert r.json()["sender"] == {"reference": f"Patient/{world.patient}"}
    r = client.post(
        f"/api/consults/{cid}/messages",
        json={"text": "血压记录照片", "image": {"content_type": "image/png", "data": PNG, "title": "血压记录"}},
        headers=world.patient_headers(),
    )
    assert r.status_code == 201
    attachment = r.json()["payload"][1]["contentAttachment"]
    assert attachment["contentType"] == "image/png"
    assert base64.b64decode(attachment["data"]) == base64.b64decode(PNG)
    r = client.post(f"/api/consults/{cid}/messages", json={"text": "继续服药，两周后复诊"}, headers=world.physician())
    assert r.status_code == 201
    assert r.json()["recipient"] == [{"reference": f"Patient/{world.patient}"}]
    messages = client.get(f"/api/consults/{cid}/messages", headers=world.patient_headers()).json()
    assert messages["total"] == 3
    assert [m["sender"]["reference"].split("/")[0] for m in messages["messages"]] == [
        "Patient",
        "Patient",
        "Practitioner",
    ]

    # the physician prescribes: a signed draft
    made = world.prescribe(cid)
    rx = made["prescription"]
    assert rx["status"] == "draft"
    assert rx["requester"] == {"reference": f"Practitioner/{world.practitioner}"}
    prov = client.get(f"{FHIR}/Provenance/{made['provenance']}", headers=hospital.headers("admin")).json()
    assert prov["target"] == [{"reference": f"MedicationRequest/{rx['id']}"}]
    assert prov["signature"][0]["data"]
    assert prov["signature"][0]["who"]["reference"] == f"Practitioner/{world.practitioner}"

    # the patient sees it waiting for review
    seen = client.get(f"/api/prescriptions/{rx['id']}", headers=world.patient_headers()).json()
    assert seen["status"] == "draft"
    assert seen["dispense"] is None

    # the pharmacist approves, dispenses, and the delivery moves on
    approved = client.post(f"/api/prescriptions/{rx['id']}/approve", headers=world.pharmacist())
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"
    assert approved.json()["review"]["outcome"] == "approved"
    dispensed = client.post(f"/api/prescriptions/{rx['id']}/dispense", headers=world.pharmacist())
    assert dispensed.status_code == 201, dispensed.text
    assert dispensed.json()["dispense"]["status"] == "in-progress"
    assert dispensed.json()["delivery"]["status"] == "preparing"
    for step in ("shipped", "delivered"):
        r = client.post(f"/api/prescriptions/{rx['id']}/delivery", json={"status": step}, headers=world.pharmacist())
        assert r.status_code == 200, r.text

    seen = client.get(f"/api/prescriptions/{rx['id']}", headers=world.patient_headers()).json()
    assert seen["status"] == "active"
    assert seen["dispense"]["status"] == "completed"
    assert seen["dispense"]["handed_over"]
    assert seen["delivery"]["status"] == "delivered"
    assert seen["delivery"]["status_zh"] == "已送达"
    assert [s["status"] for s in seen["delivery"]["history"]] == ["preparing", "shipped", "delivered"]

    # the physician closes with a summary, which joins the outpatient record, and a reminder in 14 days
    closed = client.post(
        f"/api/consults/{cid}/close",
        json={"summary": "血压控制良好，继续氨氯地平 5mg 每日一次。", "follow_up_days": 14},
        headers=world.physician(),
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "finished"
    docs = client.get(f"{FHIR}/DocumentReference?encounter=Encounter/{cid}", headers=world.patient_headers()).json()
    assert len(docs["entry"]) == 1
    doc = docs["entry"][0]["resource"]
    assert doc["id"] == closed.json()["summary_document"]
    assert doc["type"]["coding"][0]["code"] == "11488-4"
    assert (
        base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
        == "血压控制良好，继续氨氯地平 5mg 每日一次。"
    )
    task = client.get(f"{FHIR}/Task/{closed.json()['follow_up_task']}", headers=world.patient_headers()).json()
    assert task["code"]["coding"][0]["code"] == "follow-up"
    assert task["executionPeriod"]["start"] > doc["date"]

    # the patient's view of the consult, with its prescription
    mine = client.get(f"/api/consults/{cid}", headers=world.patient_headers()).json()
    assert mine["state"] == "finished"
    assert mine["prescriptions"] == [{"id": rx["id"], "status": "active"}]
    assert [h["status"] for h in mine["encounter"]["statusHistory"]] == ["planned", "in-progress", "finished"]
    assert cid in [c["id"] for c in client.get("/api/consults", headers=world.patient_headers()).json()["consults"]]

    # every transition is in the audit trail
    events = client.get(f"{FHIR}/AuditEvent?entity=Encounter/{cid}", headers=hospital.headers("admin")).json()
    actions = [e["resource"]["action"] for e in events["entry"]]
    assert actions.count("C") == 1
    assert actions.count("U") >= 3  # confirmation, acceptance, closing


def test_rejected_prescription_shows_the_reason_to_the_physician(world, client):
    cid = world.in_progress()
    rx = world.prescribe(cid)["prescription"]
    r = client.post(
        f"/api/prescriptions/{rx['id']}/reject", json={"reason": "剂量过大，请调整"}, headers=world.pharmacist()
    )
    assert r.status_code == 200
    seen = client.get(f"/api/prescriptions/{rx['id']}", headers=world.physician()).json()
    assert seen["status"] == "cancelled"
    assert seen["rejection_reason"] == "剂量过大，请调整"
    assert seen["review"] == {"outcome": "rejected", "at": seen["review"]["at"], "reason": "剂量过大，请调整"}
    # and the physician can prescribe again in the same consult
    again = world.prescribe(cid)["prescription"]
    assert again["status"] == "draft"


def test_patient_cancels_a_request(world, client):
    cid = world.request()["id"]
    r = client.post(f"/api/consults/{cid}/cancel", headers=world.patient_headers())
    assert r.status_code == 200
    assert r.json()["state"] == "cancelled"


def test_condition_or_uploaded_record_as_the_earlier_diagnosis(world, client):
    assert world.request(follow_up_of=f"Condition/{world.condition}")["state"] == "requested"
    upload = client.post(
        f"{FHIR}/DocumentReference",
        json={
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": f"Patient/{world.patient}"},
            "description": "外院门诊病历",
            "content": [{"attachment": {"contentType": "image/jpeg", "data": PNG}}],
        },
        headers=world.patient_headers(),
    )
    assert upload.status_code == 201, upload.text
    assert world.request(follow_up_of=f"DocumentReference/{upload.json()['id']}")["state"] == "requested"
