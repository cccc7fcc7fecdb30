"""HTTP routes for the patient-match review queue: the same list and decisions as `xinglin ingest reviews`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from xinglin.api.deps import CurrentPrincipal, StoreDep
from xinglin.core.errors import BadRequest, Forbidden
from xinglin.ingest.mpi import list_reviews, resolve_review
from xinglin.security.principal import Principal

router = APIRouter(prefix="/api/ingest", tags=["data cleaning"])

# Deciding that two records are one person changes identities: registration staff and administrators only.
REVIEWER_ROLES = ("admin", "registrar")


class ReviewDecision(BaseModel):
    decision: Literal["merge", "separate"]
    keep: str | None = Field(default=None, description="With merge: the Patient id to keep (default: the older)")


def _reviewer(principal: Principal) -> None:
    if principal.role not in REVIEWER_ROLES:
        raise Forbidden(
            "只有挂号登记人员和管理员可以处理患者匹配复核",
            "Only registration staff and administrators may handle patient-match reviews",
        )


@router.get("/reviews")
def reviews(principal: CurrentPrincipal, store: StoreDep, status: str = "requested") -> dict:
    """Possible duplicate patients awaiting a decision (`status=all` lists resolved ones too)."""
    _reviewer(principal)
    if status not in ("requested", "completed", "all"):
        raise BadRequest(
            "status 应为 requested、completed 或 all", "status must be requested, completed or all", element="status"
        )
    with store.unit_of_work(principal) as repo:
        items = list_reviews(repo.as_system("patient-match review"), status=None if status == "all" else status)
    return {"total": len(items), "reviews": [asdict(r) for r in items]}


@router.post("/reviews/{task_id}")
def decide_review(task_id: str, body: ReviewDecision, principal: CurrentPrincipal, store: StoreDep) -> dict:
    """Merge the two Patients (the other one becomes inactive, `replaced-by` the kept one) or keep both."""
    _reviewer(principal)
    with store.unit_of_work(principal) as repo:
        review = resolve_review(repo.as_system("patient-match review"), task_id, body.decision, keep=body.keep)
    return asdict(review)
