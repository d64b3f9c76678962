"""The services of the suite, found from their packages: no list to keep in step.

Each service's ``pyproject.toml`` names its description as an entry point::

    [project.entry-points."tessera.services"]
    mailer = "tessera.mailer.app:SERVICE"

so ``make migrate``, ``make contracts``, the test fixtures and the e2e harness iterate
:func:`specs` instead of their own lists. (The deployment files name each service too; the
contract tests check them against these descriptions.)
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tessera.common.kit import ServiceSpec

__all__ = ["names", "specs"]

GROUP = "tessera.services"


@cache
def specs() -> dict[str, ServiceSpec]:
    """Every installed service's description, by name, in port order."""
    from tessera.common.kit import ServiceSpec

    found: dict[str, ServiceSpec] = {}
    for point in entry_points(group=GROUP):
        spec = point.load()
        if not isinstance(spec, ServiceSpec) or spec.name != point.name:
            raise TypeError(f"entry point {point.name} = {point.value} is not its ServiceSpec")
        found[spec.name] = spec
    return dict(sorted(found.items(), key=lambda item: item[1].port))


def names() -> list[str]:
    """Names only: reads the entry points without importing the services."""
    return sorted(point.name for point in entry_points(group=GROUP))
