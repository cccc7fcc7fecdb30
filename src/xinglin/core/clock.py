"""Time is stored in UTC; one function gives "now" so tests and audit agree on it."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def fhir_instant(moment: datetime) -> str:
    """FHIR instant with millisecond precision and an explicit UTC offset (naive values are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
