"""Round trips with the real FHIR client, fhirpy, over HTTP."""

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from tests.conftest import patient_body


@pytest.fixture
def fhir(live_server, hospital):
    return SyncFHIRClient(f"{live_server}/fhir/R4", authorization=f"Bearer {hospital.token('physician')}")


def test_fhirpy_round_trip(fhir):
    patient = fhir.resource("Patient", **{k: v for k, v in patient_body().items() if k != "resourceType"})
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    fetched = fhir.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["text"] == "欧阳娜娜"

    fetched["gender"] = "other"
    fetched.save()
    assert fetched["meta"]["versionId"] == "2"

    obs = fhir.resource(
        "Observation",
        status="final",
        code={"text": "血糖"},
        subject=patient.to_reference(),
        valueQuantity={"value": 6.1, "unit": "mmol/L"},
    )
    obs.save()

    found = fhir.resources("Patient").search(name="娜娜", gender="other").fetch_all()
    assert [p.id for p in found] == [patient.id]
    assert fhir.resources("Observation").search(patient=patient.id).count() == 1
    first = fhir.resources("Observation").search(patient=patient.id).include("Observation", "patient").fetch_raw()
    assert {e["resource"]["resourceType"] for e in first["entry"]} == {"Observation", "Patient"}

    obs.delete()
    with pytest.raises(ResourceNotFound):
        fhir.reference("Observation", obs.id).to_resource()


def test_fhirpy_paging(fhir):
    for _ in range(7):
        fhir.resource("Patient", name=[{"text": "分页测试"}]).save()
    everyone = fhir.resources("Patient").search(name="分页测试").limit(3).fetch_all()
    assert len(everyone) == 7


def test_fhirpy_sees_operation_outcome(fhir):
    with pytest.raises(OperationOutcome) as info:
        fhir.resource("Patient", gender="boy").save()
    assert "Patient.gender" in str(info.value)
