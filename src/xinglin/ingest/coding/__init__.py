"""Diagnosis coding: free-text diagnoses -> codes from a code set the hospital loads.

The product ships no code list. ``codeset`` reads the list a hospital supplies, ``DiagnosisCoder.build``
indexes it (adding the small synonym tables and weights learned from public training pairs that live in
``data/``), and ``DiagnosisCoder.code`` returns the codes found in one diagnosis string.
"""

from functools import lru_cache
from pathlib import Path

from xinglin.core.config import get_settings
from xinglin.ingest.coding.coder import CodedDiagnosis, DiagnosisCoder
from xinglin.ingest.coding.codeset import CodeSetError, Concept, read_code_set


def default_index_path(system: str = "icd10-cn") -> Path:
    """Where `xinglin codes load` keeps the index of a code system (XINGLIN_CODESET_DIR)."""
    return Path(get_settings().codeset_dir) / f"{system}.dx-index.npz"


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> DiagnosisCoder:
    return DiagnosisCoder.load(path)


def default_coder(system: str = "icd10-cn") -> DiagnosisCoder | None:
    """The coder of the loaded code set, or None when none has been loaded yet."""
    path = default_index_path(system)
    return _load(str(path), path.stat().st_mtime) if path.is_file() else None


__all__ = [
    "CodeSetError",
    "CodedDiagnosis",
    "Concept",
    "DiagnosisCoder",
    "default_coder",
    "default_index_path",
    "read_code_set",
]
