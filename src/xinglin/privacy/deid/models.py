"""Data shapes of the de-identification engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

PERSON: Final = "PERSON"
ID_NUMBER: Final = "ID_NUMBER"
PHONE: Final = "PHONE"
EMAIL: Final = "EMAIL"
ADDRESS: Final = "ADDRESS"
RECORD_NUMBER: Final = "RECORD_NUMBER"
INSURANCE_NUMBER: Final = "INSURANCE_NUMBER"
DATE: Final = "DATE"
AGE: Final = "AGE"
PLATE: Final = "PLATE"

ENTITY_TYPES: Final[tuple[str, ...]] = (
    PERSON,
    ID_NUMBER,
    PHONE,
    EMAIL,
    ADDRESS,
    RECORD_NUMBER,
    INSURANCE_NUMBER,
    DATE,
    AGE,
    PLATE,
)


@dataclass(frozen=True, slots=True)
class Entity:
    """One identifier found in a text: ``text[start:end]`` (character offsets, end exclusive).

    ``text`` holds the matched surface in memory only: it is left out of ``repr`` and of
    :meth:`to_dict`, so logging or serialising an entity never leaks the identifier.
    """

    type: str
    start: int
    end: int
    text: str = field(default="", repr=False, compare=False)

    def to_dict(self) -> dict[str, int | str]:
        return {"type": self.type, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class MaskResult:
    """The masked text and the entities found in the *original* text."""

    masked: str
    entities: list[Entity]
