"""k-anonymity by generalising quasi-identifiers step by step, then suppressing what still stands out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Generalisation ladders: each quasi-identifier has levels from exact to fully hidden ("*").
LADDERS: dict[str, tuple[str, ...]] = {
    "age_band": ("5y", "10y", "20y", "*"),
    "region": ("city", "province", "*"),
    "first_visit": ("month", "year", "*"),
    "sex": ("exact", "*"),
}


def generalise(column: str, value: str | int | None, level: str) -> str:
    if value is None or value == "":
        return "*"
    if level == "*":
        return "*"
    if column == "age_band":
        width = {"5y": 5, "10y": 10, "20y": 20}[level]
        low = (int(value) // width) * width
        return f"{low}-{low + width - 1}" if low < 90 else "90+"
    if column == "region":
        province, _, city = str(value).partition("/")
        return f"{province}/{city}" if level == "city" and city else province or "*"
    if column == "first_visit":  # an ISO date, already shifted
        return str(value)[:7] if level == "month" else str(value)[:4]
    return str(value)  # sex exact


@dataclass
class AnonymityReport:
    k: int
    levels: dict[str, str]
    rows_in: int
    rows_suppressed: int
    classes: int
    steps: list[str] = field(default_factory=list)


def k_anonymise(
    rows: list[dict], quasi: list[str], k: int, *, max_suppression: float = 0.05
) -> tuple[list[dict], AnonymityReport]:
    """Generalises the quasi-identifier columns of `rows` (raw values in, generalised out) until at most
    `max_suppression` of the rows fall in classes smaller than k, then suppresses those rows."""
    levels = {q: 0 for q in quasi}
    steps: list[str] = []

    def view() -> list[tuple]:
        return [tuple(generalise(q, r.get(q), LADDERS[q][levels[q]]) for q in quasi) for r in rows]

    while True:
        keys = view()
        sizes = Counter(keys)
        small = sum(1 for key in keys if sizes[key] < k)
        if not rows or small <= max_suppression * len(rows):
            break
        # Coarsen the quasi-identifier that splits the rows most, among those that can still be coarsened.
        candidates = [q for q in quasi if levels[q] < len(LADDERS[q]) - 1]
        if not candidates:
            break
        distinct = {q: len({key[quasi.index(q)] for key in keys}) for q in candidates}
        target = max(candidates, key=lambda q: (distinct[q], -levels[q]))
        levels[target] += 1
        steps.append(f"{target} -> {LADDERS[target][levels[target]]}")
    keys = view()
    sizes = Counter(keys)
    kept = []
    for row, key in zip(rows, keys, strict=True):
        if sizes[key] >= k:
            kept.append({**row, **dict(zip(quasi, key, strict=True))})
    report = AnonymityReport(
        k=k,
        levels={q: LADDERS[q][levels[q]] for q in quasi},
        rows_in=len(rows),
        rows_suppressed=len(rows) - len(kept),
        classes=len({sizes_key for sizes_key in sizes if sizes[sizes_key] >= k}),
        steps=steps,
    )
    return kept, report
