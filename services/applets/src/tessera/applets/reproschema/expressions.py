"""The JavaScript expressions ReproSchema writes in ``isVis`` and ``compute``, as far as an
applet can say them: a visibility test that is all-of or any-of simple comparisons
(``phq9_1 > 0 || phq9_2 > 0``, ``mood == 2``, ``feelings.includes(1)``), and a score that is
the sum or the average of items (``a + b + c``, ``(a + b) / 2``). Anything else is not
parsed (``None``), and the caller names it as unsupported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Comparison",
    "Includes",
    "Visibility",
    "is_variable",
    "parse_score",
    "parse_visibility",
    "score_text",
    "visibility_text",
]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)"
    r"|(?P<op>===|!==|==|!=|>=|<=|&&|\|\||[<>()!.+/]))"
)
_VARIABLE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
_RESERVED = frozenset({"true", "false", "null", "undefined", "includes"})


def is_variable(name: str) -> bool:
    """Whether ``name`` can be written as a variable in an expression."""
    return bool(_VARIABLE.match(name)) and name not in _RESERVED


@dataclass(frozen=True)
class Comparison:
    variable: str
    op: Literal[">", "<", ">=", "<=", "==", "!="]
    value: int | float


@dataclass(frozen=True)
class Includes:
    variable: str
    value: int | float
    negated: bool = False


Test = Comparison | Includes


@dataclass(frozen=True)
class Visibility:
    match: Literal["all", "any"]
    tests: tuple[Test, ...]


_LONGEST = 10_000


def _tokens(text: str) -> list[str] | None:
    if len(text) > _LONGEST:
        return None
    found: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            return None
        found.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return [{"===": "==", "!==": "!="}.get(t, t) for t in found]


def _number(token: str) -> int | float | None:
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return None


class _Parser:
    """``expr := and ('||' and)*; and := test ('&&' test)*; test := '(' expr ')' | leaf``"""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, offset: int = 0) -> str | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'more'}")
        self.at += 1
        return token

    def expression(self) -> tuple[str, list[object]]:
        parts = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            parts.append(self.conjunction())
        return ("any", parts) if len(parts) > 1 else parts[0]  # type: ignore[return-value]

    def conjunction(self) -> object:
        parts = [self.test()]
        while self.peek() == "&&":
            self.take()
            parts.append(self.test())
        return ("all", parts) if len(parts) > 1 else parts[0]

    def test(self) -> object:
        if self.peek() == "(":
            self.take()
            inner = self.expression()
            self.take(")")
            return inner
        negated = self.peek() == "!"
        if negated:
            self.take()
        first = self.take()
        if self.peek() == ".":
            self.take()
            self.take("includes")
            self.take("(")
            value = _number(self.take())
            self.take(")")
            if value is None or not is_variable(first):
                raise ValueError("includes takes a number")
            return Includes(first, value, negated)
        if negated:
            raise ValueError("only includes() is negated")
        op = self.take()
        second = self.take()
        if op not in _FLIP:
            raise ValueError(f"{op} is not a comparison")
        left, right = _number(first), _number(second)
        if left is None and right is not None and is_variable(first):
            return Comparison(first, op, right)  # type: ignore[arg-type]
        if right is None and left is not None and is_variable(second):
            return Comparison(second, _FLIP[op], left)  # type: ignore[arg-type]
        raise ValueError("a comparison is a variable and a number")


def _flatten(node: object, kind: str) -> list[object]:
    if isinstance(node, tuple) and node[0] == kind:
        return [leaf for part in node[1] for leaf in _flatten(part, kind)]
    return [node]


def parse_visibility(text: str) -> Visibility | None:
    """``text`` as all-of or any-of tests, or ``None`` when it is not that simple."""
    tokens = _tokens(text)
    if not tokens:
        return None
    parser = _Parser(tokens)
    try:
        tree = parser.expression()
    except (ValueError, RecursionError):
        return None
    if parser.peek() is not None:
        return None
    if isinstance(tree, Comparison | Includes):
        return Visibility("all", (tree,))
    kind = tree[0]
    leaves = _flatten(tree, kind)
    if not all(isinstance(leaf, Comparison | Includes) for leaf in leaves):
        return None
    return Visibility("any" if kind == "any" else "all", tuple(leaves))  # type: ignore[arg-type]


def visibility_text(match: Literal["all", "any"], tests: list[Test]) -> str:
    def one(test: Test) -> str:
        if isinstance(test, Includes):
            return f"{'!' if test.negated else ''}{test.variable}.includes({test.value})"
        return f"{test.variable} {test.op} {test.value}"

    return (" || " if match == "any" else " && ").join(one(t) for t in tests)


def parse_score(text: str) -> tuple[Literal["sum", "average"], list[str]] | None:
    """A sum (``a + b``) or an average (``(a + b) / 2``) of distinct variables."""
    tokens = _tokens(text)
    if not tokens:
        return None
    kind: Literal["sum", "average"] = "sum"
    divisor = None
    if len(tokens) >= 5 and tokens[-2] == "/" and tokens[0] == "(" and tokens[-3] == ")":
        divisor, tokens, kind = _number(tokens[-1]), tokens[1:-3], "average"
    elif len(tokens) >= 2 and tokens[0] == "(" and tokens[-1] == ")":
        tokens = tokens[1:-1]
    names = tokens[0::2]
    if not names or any(t != "+" for t in tokens[1::2]) or len(tokens) % 2 == 0:
        return None
    if not all(is_variable(n) for n in names) or len(set(names)) != len(names):
        return None
    if kind == "average" and divisor != len(names):
        return None
    return kind, names


def score_text(kind: Literal["sum", "average"], names: list[str]) -> str:
    total = " + ".join(names)
    return f"({total}) / {len(names)}" if kind == "average" else total
