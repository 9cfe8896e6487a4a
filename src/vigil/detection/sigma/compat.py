"""Where Vigil corrects pySigma 1.5.1 to the Sigma specification, applied once when rules are compiled.

- Encoding modifiers on exact bytes, and ``utf16le`` (``encodings.py``).
- Condition operators as keywords: pySigma's grammar takes ``not``/``and``/``or`` as plain strings, so
  a detection named ``notepad`` reads as ``not epad`` and ``order`` as ``or der``.
- Integers stay integers: pySigma keeps a number as a float unless ``int == float`` holds, which fails
  beyond 2**53 (``LogonId|lt: 9007199254740993`` became ...992.0).
"""

from __future__ import annotations

from math import isfinite
from typing import Any

import sigma.conditions as sigma_conditions
from pyparsing import Keyword, OpAssoc, infix_notation
from sigma.conditions import ConditionAND, ConditionNOT, ConditionOR
from sigma.exceptions import SigmaValueError
from sigma.types import SigmaNumber

from vigil.detection.sigma import encodings


def _number(self: SigmaNumber, init_number: Any) -> None:
    """SigmaNumber's own conversion, except that an integer (or integer text) stays exact."""
    if isinstance(init_number, int) and not isinstance(init_number, bool):
        self.number = init_number
        return
    try:
        value = float(init_number)
        if not isfinite(value):
            raise ValueError("Invalid number")
    except (ValueError, OverflowError, TypeError) as exc:
        raise SigmaValueError("Invalid number") from exc
    if isinstance(init_number, str) and init_number.strip().lstrip("+-").isdigit():
        self.number = int(init_number)
    else:
        self.number = int(value) if value.is_integer() else value


def apply() -> None:
    encodings.register()
    sigma_conditions.condition = infix_notation(  # type: ignore[no-untyped-call]
        sigma_conditions.operand,
        [
            (Keyword("not"), 1, OpAssoc.RIGHT, ConditionNOT.from_parsed),
            (Keyword("and"), 2, OpAssoc.LEFT, ConditionAND.from_parsed),
            (Keyword("or"), 2, OpAssoc.LEFT, ConditionOR.from_parsed),
        ],
    )
    sigma_conditions._parse_condition_string.cache_clear()
    SigmaNumber.__post_init__ = _number  # type: ignore[method-assign]
