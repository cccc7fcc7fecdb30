"""HTTP routes of the privacy module: POST /api/deid."""

from __future__ import annotations

import secrets
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from xinglin.api.deps import CurrentPrincipal, StoreDep
from xinglin.privacy.deid import mask

router = APIRouter(prefix="/api", tags=["privacy"])


class DeidRequest(BaseModel):
    text: str = Field(max_length=1_000_000, description="Clinical text to de-identify")
    mode: Literal["tag", "pseudonym"] = "tag"
    date_shift_days: int = Field(default=0, ge=-3650, le=3650)


class DeidEntity(BaseModel):
    type: str
    start: int
    end: int


class DeidResponse(BaseModel):
    masked: str
    entities: list[DeidEntity]


@router.post("/deid")
def deidentify(body: DeidRequest, principal: CurrentPrincipal, store: StoreDep) -> DeidResponse:
    """Masks identifiers in a text. Pseudonym mode uses a fresh key per request (consistent within it)."""
    key = secrets.token_bytes(32) if body.mode == "pseudonym" else None
    result = mask(body.text, mode=body.mode, key=key, date_shift_days=body.date_shift_days)
    with store.unit_of_work(principal) as repo:
        repo.record_event("deid", detail=f"{len(body.text)} characters, {len(result.entities)} entities")
    return DeidResponse(
        masked=result.masked, entities=[DeidEntity(type=e.type, start=e.start, end=e.end) for e in result.entities]
    )
