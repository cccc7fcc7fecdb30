"""De-identification of clinical text and FHIR resources (PIPL).

Python API::

    from xinglin.privacy.deid import detect, mask, deidentify_resource

    detect("患者王建国，电话13812345678")          # [Entity(type='PERSON', ...), ...]
    mask(text).masked                                # "患者[PERSON]，电话[PHONE]"
    mask(text, mode="pseudonym", key=export_key, date_shift_days=-37)
"""

from .fhir import deidentify_resource
from .models import ENTITY_TYPES, Entity, MaskResult
from .pseudonym import patient_date_shift, pseudonym, shift_date
from .service import detect, detect_many, mask

__all__ = [
    "ENTITY_TYPES",
    "Entity",
    "MaskResult",
    "deidentify_resource",
    "detect",
    "detect_many",
    "mask",
    "patient_date_shift",
    "pseudonym",
    "shift_date",
]
