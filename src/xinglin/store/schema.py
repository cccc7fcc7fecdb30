"""Imports every table so that MetaData (and Alembic) sees the whole schema."""

from xinglin.store import models as store_models  # noqa: F401
from xinglin.store.db import metadata
from xinglin.tenancy import models as tenancy_models  # noqa: F401

__all__ = ["metadata"]
