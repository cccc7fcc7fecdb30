"""Where the reference data lives (../shared/data beside the repository, or $XINGLIN_SHARED_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("XINGLIN_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))
V601_CSV = SHARED / "icd10-cn" / "icd10-beijing-clinical-v601.csv"
V601_XLSX = SHARED / "icd10-cn" / "icd10-beijing-clinical-v601.xlsx"
CHIP_CDN = SHARED / "chip-cdn" / "CHIP-CDN_train.json"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (the shared data folder ../shared/data is missing)")
    return path
