"""Online follow-up consultation (互联网复诊): consults, messages, e-prescriptions with pharmacist review,
dispensing and delivery, all as FHIR resources in the store. See models.py for the mapping."""
