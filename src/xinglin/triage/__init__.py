"""AI triage and smart department guidance (智能导诊 / 预检分诊).

``assess(text, *, age=None, sex=None, pregnant=None, vitals=None) -> TriageResult``: the clinic to register
with (诊疗科目 code), two alternatives, the urgency level I–IV, red flags and whether a person must look now.
Machine-generated advice only: never a diagnosis, never a drug.
"""

from xinglin.triage.engine import assess, check_request
from xinglin.triage.models import TriageInputError, TriageResult

__all__ = ["TriageInputError", "TriageResult", "assess", "check_request"]
