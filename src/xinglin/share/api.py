"""HTTP routes for research exports: researchers request them; files are fetched by export id."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from xinglin.api.deps import CurrentPrincipal, SettingsDep, StoreDep
from xinglin.core.errors import Forbidden, NotFound
from xinglin.share.service import ALLOWED_ROLES, export_dataset

router = APIRouter(prefix="/api/share", tags=["research data"])
FILES = ("data.csv", "data.parquet", "dictionary.json", "report.json")


class ExportRequest(BaseModel):
    cohort: str = Field(description="FHIR search, e.g. Condition?code=I10")
    fields: list[str]
    k: int = 5
    destination: str | None = None


@router.post("/exports", status_code=201)
def create_export(body: ExportRequest, principal: CurrentPrincipal, store: StoreDep, settings: SettingsDep) -> dict:
    record = export_dataset(
        store,
        principal,
        body.cohort,
        body.fields,
        k=body.k,
        out_dir=Path(settings.export_dir),
        destination=body.destination,
    )
    data = record.as_dict()
    data.pop("directory")
    data["download"] = [f"/api/share/exports/{record.export_id}/{name}" for name in FILES]
    return data


@router.get("/exports/{export_id}/{name}")
def download(
    export_id: str, name: str, principal: CurrentPrincipal, store: StoreDep, settings: SettingsDep
) -> FileResponse:
    if principal.role not in ALLOWED_ROLES:
        raise Forbidden(
            "只有研究人员或管理员可以下载研究数据集", "Only researchers or admins may download research data sets"
        )
    if name not in FILES:
        raise NotFound(f"没有文件 {name}", f"No file {name}")
    with store.unit_of_work(principal) as repo:
        task = repo.as_system("research export").read("Task", export_id).as_dict()
        if task.get("requester", {}).get("display") != principal.label and principal.role != "admin":
            raise Forbidden("只能下载自己发起的导出", "You may download only your own exports")
        repo.record_event("export", detail=f"download {export_id}/{name}")
    path = Path(settings.export_dir) / principal.tenant_code / export_id / name
    if not path.is_file():
        raise NotFound(f"导出 {export_id} 没有文件 {name}", f"Export {export_id} has no file {name}")
    return FileResponse(path, filename=name)
