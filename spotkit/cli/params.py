"""Numbers from the command line, refused when they make no sense: NaN, infinities, negatives,
zero where something must flow. One clear line names the flag (click's usage error, exit 2)."""

from __future__ import annotations

import math

import click


class Number(click.ParamType):  # type: ignore[type-arg]
    name = "number"

    def __init__(self, minimum: float = 0.0, maximum: float = math.inf, positive: bool = False) -> None:
        self.minimum, self.maximum, self.positive = minimum, maximum, positive

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float) and math.isfinite(value):
            number = value
        else:
            try:
                number = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.positive and number <= 0:
            self.fail(f"{number:g} must be more than 0", param, ctx)
        if number < self.minimum or number > self.maximum:
            top = "" if math.isinf(self.maximum) else f" and at most {self.maximum:g}"
            self.fail(f"{number:g} must be at least {self.minimum:g}{top}", param, ctx)
        return number


POSITIVE = Number(positive=True)
NON_NEGATIVE = Number()
SHARE = Number(positive=True, maximum=1.0)  # a fraction in (0, 1]
