"""Booking states and the weekly template that slots are generated from."""

from __future__ import annotations

from dataclasses import dataclass

# Appointment states in which the appointment occupies its slot.
HOLDING_STATUSES = frozenset({"proposed", "pending", "booked", "arrived", "fulfilled", "checked-in"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Session:
    """One clinic session in a weekly template: a weekday and a time range, e.g. mon 08:00-12:00."""

    weekday: int  # 0 = Monday
    start: str  # "08:00"
    end: str  # "12:00"


@dataclass(frozen=True, slots=True)
class WeeklyTemplate:
    sessions: tuple[Session, ...]
    slot_minutes: int = 30
