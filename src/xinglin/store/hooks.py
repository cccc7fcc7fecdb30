"""Domain rules that must hold however a resource is written: FHIR API, portal, imports alike.

A rule runs inside the writer's unit of work, after validation and before the write, so whatever it
changes commits or rolls back together with the write that triggered it. Domain packages register their
rules in a `rules` module listed in PLUGINS; the store loads them on first use, so no writer can forget to.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xinglin.store.repository import Repository

# (repository, action "create" | "update" | "delete", new JSON or None, previous JSON or None)
WriteRule = Callable[["Repository", str, dict | None, dict | None], None]

PLUGINS = ("xinglin.scheduling.rules", "xinglin.telehealth.rules")

_RULES: dict[str, list[WriteRule]] = {}
_loaded = False


def register(resource_type: str, rule: WriteRule) -> None:
    if rule not in _RULES.setdefault(resource_type, []):
        _RULES[resource_type].append(rule)


def rules_for(resource_type: str) -> list[WriteRule]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in PLUGINS:
            importlib.import_module(module)
    return _RULES.get(resource_type, [])
