"""Scheduling: slots from a weekly template, booking, cancelling. All through the repository."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from xinglin.core.errors import BadRequest
from xinglin.scheduling.models import WEEKDAYS, Session, WeeklyTemplate
from xinglin.store.repository import Repository, StoredResource


def parse_template(spec: dict[str, list[str]], slot_minutes: int = 30) -> WeeklyTemplate:
    """{"mon": ["08:00-12:00", "14:00-17:00"], ...} -> WeeklyTemplate, with errors naming the field."""
    if not 5 <= slot_minutes <= 240:
        raise BadRequest(
            "号源时长应在 5 到 240 分钟之间", "slot_minutes must be between 5 and 240", element="slot_minutes"
        )
    sessions = []
    for day, ranges in spec.items():
        if day not in WEEKDAYS:
            raise BadRequest(
                f"未知的星期 {day}（可选：{', '.join(WEEKDAYS)}）",
                f"Unknown weekday '{day}' (one of {', '.join(WEEKDAYS)})",
                element=f"template.{day}",
            )
        for text in ranges:
            start, _, end = text.partition("-")
            try:
                s, e = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
            except ValueError:
                raise BadRequest(
                    f"时段“{text}”格式应为 HH:MM-HH:MM",
                    f"Session '{text}' must be HH:MM-HH:MM",
                    element=f"template.{day}",
                ) from None
            if s >= e:
                raise BadRequest(
                    f"时段“{text}”的结束时间应晚于开始时间",
                    f"Session '{text}' ends before it starts",
                    element=f"template.{day}",
                )
            sessions.append(Session(WEEKDAYS.index(day), s.strftime("%H:%M"), e.strftime("%H:%M")))
    return WeeklyTemplate(tuple(sessions), slot_minutes)


def generate_slots(
    repo: Repository,
    schedule_id: str,
    first_day: date,
    last_day: date,
    template: WeeklyTemplate,
    time_zone: str = "Asia/Shanghai",
) -> list[StoredResource]:
    """Creates free Slots for every session of the template between the two days (inclusive)."""
    if last_day < first_day:
        raise BadRequest("结束日期早于开始日期", "The last day is before the first day", element="last_day")
    if (last_day - first_day).days > 366:
        raise BadRequest("一次最多生成一年的号源", "Generate at most one year of slots at a time", element="last_day")
    schedule = repo.read("Schedule", schedule_id).as_dict()
    zone = ZoneInfo(time_zone)
    step = timedelta(minutes=template.slot_minutes)
    items = []
    day = first_day
    while day <= last_day:
        for session in template.sessions:
            if session.weekday != day.weekday():
                continue
            start = datetime.combine(day, time.fromisoformat(session.start), zone)
            end_of_session = datetime.combine(day, time.fromisoformat(session.end), zone)
            while start + step <= end_of_session:
                slot = {
                    "resourceType": "Slot",
                    "schedule": {"reference": f"Schedule/{schedule_id}"},
                    "status": "free",
                    "start": start.isoformat(),
                    "end": (start + step).isoformat(),
                }
                for key in ("serviceType", "specialty"):
                    if schedule.get(key):
                        slot[key] = schedule[key]
                items.append(("Slot", slot, None))
                start += step
        day += timedelta(days=1)
    return [r.resource for r in repo.create_many(items)]


def book_slot(
    repo: Repository,
    slot_id: str,
    patient_id: str,
    *,
    practitioner_id: str | None = None,
    description: str | None = None,
) -> StoredResource:
    """Books a slot for a patient: an Appointment on it (the store rule marks the slot busy)."""
    slot = repo.read("Slot", slot_id).as_dict()
    participants = [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}]
    if practitioner_id:
        participants.append({"actor": {"reference": f"Practitioner/{practitioner_id}"}, "status": "accepted"})
    appointment = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "start": slot["start"],
        "end": slot["end"],
        "participant": participants,
    }
    for key in ("serviceType", "specialty"):
        if slot.get(key):
            appointment[key] = slot[key]
    if description:
        appointment["description"] = description
    return repo.create(appointment).resource


def cancel_appointment(repo: Repository, appointment_id: str, reason: str | None = None) -> StoredResource:
    """Cancels an appointment; its slot becomes free again."""
    appointment = repo.read("Appointment", appointment_id).as_dict()
    if appointment.get("status") == "cancelled":
        return repo.read("Appointment", appointment_id)
    appointment["status"] = "cancelled"
    if reason:
        appointment["cancelationReason"] = {"text": reason}
    return repo.update("Appointment", appointment_id, appointment).resource


def reschedule(repo: Repository, appointment_id: str, new_slot_id: str) -> StoredResource:
    """Moves an appointment to another slot in one step: the new slot is taken, the old one freed."""
    appointment = repo.read("Appointment", appointment_id).as_dict()
    slot = repo.read("Slot", new_slot_id).as_dict()
    appointment.update(slot=[{"reference": f"Slot/{new_slot_id}"}], start=slot["start"], end=slot["end"])
    return repo.update("Appointment", appointment_id, appointment).resource
