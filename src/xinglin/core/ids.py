"""Identifiers the server assigns."""

import uuid


def new_resource_id() -> str:
    # FHIR ids allow [A-Za-z0-9-.]{1,64}; a random UUID never collides and reveals nothing.
    return str(uuid.uuid4())
