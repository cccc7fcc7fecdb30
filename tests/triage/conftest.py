from __future__ import annotations

from typing import Any

import pytest

from xinglin.triage import TriageResult, assess


def codes(result: TriageResult) -> list[str]:
    return [result.department.code, *(a.department.code for a in result.alternatives)]


def flags(result: TriageResult) -> set[str]:
    return {f.code for f in result.red_flags}


@pytest.fixture
def triage():
    def run(text: str, **kw: Any) -> TriageResult:
        return assess(text, **kw)

    return run
