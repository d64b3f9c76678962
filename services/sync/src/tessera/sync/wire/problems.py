"""Problems with a payload, named by their path below the event, in MISP's words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

__all__ = ["InvalidPayload", "Problem", "fail", "problems_of"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a payload: ``path`` below the event (``""``: the payload)."""

    path: str
    message: str


class InvalidPayload(ValueError):
    """A payload MISP would refuse; :attr:`problems` says where and why, in MISP's words."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.path or 'payload'}: {p.message}" for p in self.problems))

    @property
    def field(self) -> str:
        """The path of the first problem."""
        return self.problems[0].path

    @property
    def message(self) -> str:
        return self.problems[0].message

    def by_field(self) -> dict[str, list[str]]:
        """``{path: [messages]}``: the ``errors`` member of MISP's failure answers."""
        errors: dict[str, list[str]] = {}
        for problem in self.problems:
            errors.setdefault(problem.path, []).append(problem.message)
        return errors


def fail(field: str, message: str) -> PydanticCustomError:
    """A problem with ``field``, a dotted path below the model that raises it (a model
    validator's errors are otherwise placed on the model itself)."""
    return PydanticCustomError("misp_field", "{message}", {"field": field, "message": message})


def problems_of(error: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in detail["loc"]]
        message = detail["msg"]
        if detail["type"] == "misp_field":
            loc += str(detail["ctx"]["field"]).split(".")
            message = str(detail["ctx"]["message"])
        elif detail["type"] == "missing":
            message = "This field is required."
        problems.append(Problem(".".join([prefix, *loc] if prefix else loc), message))
    return problems
