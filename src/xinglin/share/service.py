"""Research data sets: a cohort (a FHIR search), chosen fields, de-identified, k-anonymous, recorded.

A researcher never reads identified data: the export reads as Xinglin itself on their behalf (every read
audited, naming them), keeps only patients with active research consent, replaces identities with keyed
pseudonyms, shifts dates per patient, generalises quasi-identifiers until k-anonymity holds and suppresses
what still stands out. Each export is recorded as a FHIR Task (who, cohort, fields, k, rows, file hashes)
and can be reproduced: its key is derived from the server secret and the export's id.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import polars as pl

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import BadRequest, Forbidden, NotFound
from xinglin.core.ids import new_resource_id
from xinglin.privacy.consent import age_on, has_consent
from xinglin.privacy.deid import patient_date_shift
from xinglin.security.keys import signing_key
from xinglin.security.principal import Principal
from xinglin.share.anonymity import AnonymityReport, k_anonymise
from xinglin.share.residency import check_destination
from xinglin.store.repository import Repository, Store
from xinglin.store.search_params import params_for

TASK_CODE = {"system": "https://xinglin.dev/CodeSystem/share-task", "code": "research-export"}
QUASI = ("age_band", "sex", "region", "first_visit")
BASE_FIELDS = {
    "age_band": ("年龄段", "Age band (years)", "quasi-identifier"),
    "sex": ("性别", "Sex (FHIR administrative gender)", "quasi-identifier"),
    "region": ("地区（省/市）", "Region: province/city", "quasi-identifier"),
    "first_visit": ("首次就诊日期（按患者偏移）", "First visit date, shifted per patient", "quasi-identifier"),
    "visits": ("就诊次数", "Number of visits", "attribute"),
    "diagnoses": ("诊断编码", "Diagnosis codes (ICD-10), ';'-separated", "attribute"),
}
LAB_PREFIX = "lab:"  # lab:<LOINC code> -> the patient's latest value of that analyte
ALLOWED_ROLES = ("researcher", "admin")


@dataclass
class ExportRecord:
    export_id: str
    cohort: str
    fields: list[str]
    k: int
    as_of: str
    patients_in_cohort: int
    patients_with_consent: int
    rows: int
    anonymity: AnonymityReport
    files: dict[str, str]  # name -> sha256
    directory: str
    destination: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _bad(zh: str, en: str, element: str) -> BadRequest:
    return BadRequest(zh, en, element=element)


def _check_fields(fields: list[str]) -> list[str]:
    if not fields:
        raise _bad("至少选择一个字段", "Choose at least one field", "fields")
    for name in fields:
        if name not in BASE_FIELDS and not (name.startswith(LAB_PREFIX) and len(name) > len(LAB_PREFIX)):
            raise _bad(
                f"未知字段 {name}（可选：{', '.join(BASE_FIELDS)}、lab:<LOINC>）",
                f"Unknown field {name} (one of {', '.join(BASE_FIELDS)}, lab:<LOINC>)",
                "fields",
            )
    return list(dict.fromkeys(fields))


def _parse_cohort(cohort: str) -> tuple[str, list[tuple[str, str]]]:
    rtype, _, query = cohort.partition("?")
    rtype = rtype.strip().strip("/")
    if not rtype or (rtype != "Patient" and "patient" not in params_for(rtype)):
        raise _bad(
            f"队列“{cohort}”应为 类型?条件，且该类型可按患者检索",
            f"Cohort '{cohort}' must be Type?criteria for a type that refers to a patient",
            "cohort",
        )
    return rtype, parse_qsl(query, keep_blank_values=True)


def _patient_of(resource: dict) -> str | None:
    if resource["resourceType"] == "Patient":
        return resource["id"]
    for key in ("subject", "patient", "beneficiary", "for"):
        ref = (resource.get(key) or {}).get("reference", "") if isinstance(resource.get(key), dict) else ""
        if ref.startswith("Patient/"):
            return ref.split("/", 2)[1]
    return None


def _all(repo: Repository, rtype: str, params: list[tuple[str, str]]) -> list[dict]:
    return [m.as_dict() for m in repo.search_all(rtype, params)]


def _export_key(secret: str, export_id: str) -> bytes:
    return hmac.new(secret.encode(), f"research-export\x1f{export_id}".encode(), hashlib.sha256).digest()


def _row(repo: Repository, patient: dict, fields: list[str], key: bytes, as_of: date) -> dict:
    pid = patient["id"]
    row: dict = {"pseudo_id": hmac.new(key, pid.encode(), hashlib.sha256).hexdigest()[:16]}
    if "age_band" in fields:
        row["age_band"] = age_on(patient.get("birthDate"), as_of)
    if "sex" in fields:
        row["sex"] = patient.get("gender")
    if "region" in fields:
        address = (patient.get("address") or [{}])[0]
        row["region"] = "/".join(p for p in (address.get("state"), address.get("city")) if p) or None
    if "first_visit" in fields or "visits" in fields:
        encounters = _all(repo, "Encounter", [("patient", pid)])
        starts = sorted((e.get("period") or {}).get("start", "")[:10] for e in encounters if e.get("period"))
        if "visits" in fields:
            row["visits"] = len(encounters)
        if "first_visit" in fields:
            shift = timedelta(days=patient_date_shift(key, f"Patient/{pid}"))
            row["first_visit"] = (date.fromisoformat(starts[0]) + shift).isoformat() if starts else None
    if "diagnoses" in fields:
        codes = {
            c["code"]
            for cond in _all(repo, "Condition", [("patient", pid)])
            for c in (cond.get("code") or {}).get("coding", [])
            if c.get("code")
        }
        row["diagnoses"] = ";".join(sorted(codes))
    for name in (f for f in fields if f.startswith(LAB_PREFIX)):
        loinc = name[len(LAB_PREFIX) :]
        obs = _all(repo, "Observation", [("patient", pid), ("code", f"http://loinc.org|{loinc}"), ("_sort", "-date")])
        value = next((o["valueQuantity"].get("value") for o in obs if isinstance(o.get("valueQuantity"), dict)), None)
        row[name] = value
    return row


def _write_files(directory: Path, rows: list[dict], columns: list[str], dictionary: dict, report: dict) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (directory / "data.csv").write_text(buffer.getvalue(), encoding="utf-8")
    frame = pl.DataFrame(
        {c: [r.get(c) for r in rows] for c in columns},
        schema={
            c: (pl.Float64 if c.startswith(LAB_PREFIX) else pl.Int64 if c == "visits" else pl.Utf8) for c in columns
        },
    )
    frame.write_parquet(directory / "data.parquet")
    (directory / "dictionary.json").write_text(json.dumps(dictionary, ensure_ascii=False, indent=2), encoding="utf-8")
    (directory / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in ("data.csv", "dictionary.json")
    }


def _dictionary(columns: list[str], anonymity: AnonymityReport) -> dict:
    entries = {
        "pseudo_id": {
            "zh": "假名编号（每次导出不同）",
            "en": "Pseudonym, different in every export",
            "role": "identifier (pseudonymous)",
        }
    }
    for c in columns[1:]:
        if c in BASE_FIELDS:
            zh, en, role = BASE_FIELDS[c]
        else:
            zh, en, role = (
                f"检验 {c[len(LAB_PREFIX) :]} 最近一次结果",
                f"Latest value of LOINC {c[len(LAB_PREFIX) :]}",
                "attribute",
            )
        entry = {"zh": zh, "en": en, "role": role}
        if c in anonymity.levels:
            entry["generalised_to"] = anonymity.levels[c]
        entries[c] = entry
    return {
        "columns": entries,
        "k": anonymity.k,
        "note": "De-identified data is still personal data (PIPL); do not attempt re-identification.",
    }


def export_dataset(
    store: Store,
    principal: Principal,
    cohort: str,
    fields: list[str],
    *,
    k: int = 5,
    out_dir: Path,
    destination: str | None = None,
    export_id: str | None = None,
    as_of: date | None = None,
    record: bool = True,
) -> ExportRecord:
    if principal.role not in ALLOWED_ROLES:
        raise Forbidden(
            "只有研究人员或管理员可以导出研究数据集", "Only researchers or admins may export research data sets"
        )
    if not 2 <= k <= 1000:
        raise _bad("k 应在 2 到 1000 之间", "k must be between 2 and 1000", "k")
    fields = _check_fields(fields)
    rtype, criteria = _parse_cohort(cohort)
    export_id = export_id or new_resource_id()
    as_of = as_of or utcnow().date()
    key = _export_key(signing_key(store.engine, store.settings), export_id)
    with store.unit_of_work(principal) as own:
        repo = own.as_system("research export")
        matches = _all(repo, rtype, criteria)
        cohort_ids = sorted({p for p in map(_patient_of, matches) if p})
        consenting = [pid for pid in cohort_ids if has_consent(repo, pid, "research")]
        if destination:
            check_destination(repo, destination, consenting)
        rows = [_row(repo, repo.read("Patient", pid).as_dict(), fields, key, as_of) for pid in consenting]
        quasi = [q for q in QUASI if q in fields]
        kept, anonymity = k_anonymise(rows, quasi, k)
        columns = ["pseudo_id", *fields]
        directory = out_dir / principal.tenant_code / export_id
        report = {
            "export_id": export_id,
            "cohort": cohort,
            "fields": fields,
            "k": k,
            "as_of": as_of.isoformat(),
            "patients_in_cohort": len(cohort_ids),
            "patients_with_research_consent": len(consenting),
            "rows": len(kept),
            "anonymity": asdict(anonymity),
            "destination": destination,
        }
        hashes = _write_files(directory, kept, columns, _dictionary(columns, anonymity), report)
        task = {
            "resourceType": "Task",
            "status": "completed",
            "intent": "order",
            "code": {"coding": [TASK_CODE]},
            "authoredOn": fhir_instant(utcnow()),
            "requester": {"display": principal.label},
            "input": [
                {"type": {"text": name}, "valueString": str(value)}
                for name, value in (
                    ("cohort", cohort),
                    ("fields", ",".join(fields)),
                    ("k", k),
                    ("as-of", as_of.isoformat()),
                    ("destination", destination or "domestic"),
                )
            ],
            "output": [
                {"type": {"text": name}, "valueString": str(value)}
                for name, value in (
                    ("rows", len(kept)),
                    ("suppressed", anonymity.rows_suppressed),
                    ("generalisation", json.dumps(anonymity.levels)),
                    *((f"sha256:{n}", h) for n, h in hashes.items()),
                )
            ],
        }
        if record:
            repo.create_many([("Task", task, export_id)])
        verb = "research export" if record else "reproduced research export"
        own.record_event("export", detail=f"{verb} {export_id}: {len(kept)} rows, k={k}")
    return ExportRecord(
        export_id,
        cohort,
        fields,
        k,
        as_of.isoformat(),
        len(cohort_ids),
        len(consenting),
        len(kept),
        anonymity,
        hashes,
        str(directory),
        destination,
    )


def reproduce_export(store: Store, principal: Principal, export_id: str, *, out_dir: Path) -> ExportRecord:
    """Runs a recorded export again with the same cohort, fields, k, date and key, into a new folder."""
    with store.unit_of_work(principal) as own:
        try:
            task = own.as_system("research export").read("Task", export_id).as_dict()
        except NotFound:
            raise NotFound(f"没有编号为 {export_id} 的导出记录", f"No export {export_id} was recorded") from None
    if task.get("code", {}).get("coding", [{}])[0].get("code") != TASK_CODE["code"]:
        raise NotFound(f"没有编号为 {export_id} 的导出记录", f"No export {export_id} was recorded")
    inputs = {i["type"]["text"]: i["valueString"] for i in task["input"]}
    destination = None if inputs["destination"] == "domestic" else inputs["destination"]
    return export_dataset(
        store,
        principal,
        inputs["cohort"],
        inputs["fields"].split(","),
        k=int(inputs["k"]),
        out_dir=out_dir / "reproduced",
        destination=destination,
        export_id=export_id,
        as_of=date.fromisoformat(inputs["as-of"]),
        record=False,
    )
