"""Store rule: an Appointment that references Slots occupies them, and a Slot holds one Appointment.

Runs inside whatever unit of work writes the Appointment (FHIR API, portal, transaction bundle), so the
slot changes commit or roll back with it. Each slot row is locked before it is checked, so of many
patients trying the same slot at once exactly one succeeds; the others get 409.
"""

from __future__ import annotations

import orjson

from xinglin.core.errors import Conflict, InvalidResource
from xinglin.scheduling.models import HOLDING_STATUSES
from xinglin.store.hooks import register
from xinglin.store.repository import Repository


def held_slots(appointment: dict | None) -> set[str]:
    """Ids of the slots an appointment occupies in its current state."""
    if not appointment or appointment.get("status") not in HOLDING_STATUSES:
        return set()
    ids = set()
    for ref in appointment.get("slot") or []:
        target = (ref or {}).get("reference", "")
        if target.startswith("Slot/"):
            ids.add(target.split("/", 2)[1])
    return ids


def _set_status(system: Repository, slot_id: str, *, booking: bool) -> None:
    row = system.current_locked("Slot", slot_id)
    if row is None or row.deleted:
        raise InvalidResource(
            f"Appointment.slot 引用的号源 Slot/{slot_id} 不存在",
            f"Appointment.slot refers to Slot/{slot_id}, which does not exist",
            element="Appointment.slot",
        )
    slot = orjson.loads(row.content)
    if booking and slot.get("status") != "free":
        raise Conflict(
            "该号源已被预约，请选择其他时间",
            f"Slot/{slot_id} is already booked; choose another time",
            element="Appointment.slot",
        )
    slot["status"] = "busy" if booking else "free"
    system.update("Slot", slot_id, slot)


def guard_slots(repo: Repository, action: str, new: dict | None, old: dict | None) -> None:
    before, after = held_slots(old), held_slots(new)
    if before == after:
        return
    system = repo.as_system("slot booking")
    # A fixed order, so two multi-slot bookings cannot deadlock on each other's locks.
    for slot_id in sorted(after - before):
        _set_status(system, slot_id, booking=True)
    for slot_id in sorted(before - after):
        _set_status(system, slot_id, booking=False)


register("Appointment", guard_slots)
