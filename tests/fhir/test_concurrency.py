"""Two writers with the same If-Match: exactly one wins."""

import threading

from tests.conftest import patient_body

FHIR = "/fhir/R4"


def test_concurrent_updates_with_same_if_match(client, hospital):
    h = hospital.headers("physician")
    created = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    pid = created["id"]
    for round_ in range(5):
        version = client.get(f"{FHIR}/Patient/{pid}", headers=h).json()["meta"]["versionId"]
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def writer(gender: str, version=version, barrier=barrier, statuses=statuses):
            body = {**created, "gender": gender}
            barrier.wait()
            r = client.put(f"{FHIR}/Patient/{pid}", json=body, headers={**h, "If-Match": f'W/"{version}"'})
            statuses.append(r.status_code)

        threads = [threading.Thread(target=writer, args=(g,)) for g in ("male", "other")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200, 412], (round_, statuses)
    final = client.get(f"{FHIR}/Patient/{pid}", headers=h).json()
    assert final["meta"]["versionId"] == "6"
    assert client.get(f"{FHIR}/Patient/{pid}/_history", headers=h).json()["total"] == 6
