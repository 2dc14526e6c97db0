"""Kubernetes resource quantities (``resource.Quantity``): parse and canonicalise.

``parse_quantity("500m") == Decimal("0.5")``; ``canonical("0.5") == "500m"``,
``canonical("1024Mi") == "1Gi"``, ``canonical("1.5Gi") == "1536Mi"``. The
format (binary SI, decimal SI or decimal exponent) of the input is kept, as
Kubernetes does, and values are rounded up to nano units. ``int_value`` and
``milli_value`` give the integer forms the kubelet hands to cgroups (bytes,
millicores), None for a missing or malformed quantity.

Concurrency: pure functions, no shared state.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BIN_SUFFIX = {v: k for k, v in _BINARY.items()}


# Quantities beyond 10**±MAX_EXPONENT are refused: far past any real amount, and their digits would not
# fit Python's int/str conversion limit (or Decimal's exponent range) on the way to the canonical form.
MAX_EXPONENT = 1000
OUT_OF_RANGE = "quantity is out of range: its magnitude must be within 1e-1000 and 1e1000"


class QuantityError(ValueError):
    pass


def _split(s: str) -> tuple[Decimal, str, str]:
    """(value, format, original suffix); format is 'BinarySI', 'DecimalSI' or 'DecimalExponent'."""
    if not isinstance(s, str):
        raise QuantityError(QUANTITY_ERROR)
    s = s.strip()
    m = QUANTITY_RE.match(s)
    if not m or not s:
        raise QuantityError(QUANTITY_ERROR)
    num, suffix = m.group(1), m.group(2)
    if num.count(".") > 1 or num in (".", "+.", "-.", "+", "-"):
        raise QuantityError(QUANTITY_ERROR)
    try:
        base = Decimal(num)
    except InvalidOperation:
        raise QuantityError(QUANTITY_ERROR) from None
    if base != 0 and abs(base.adjusted()) > MAX_EXPONENT:
        raise QuantityError(OUT_OF_RANGE)
    if suffix in _BINARY:
        return base * (Decimal(2) ** _BINARY[suffix]), "BinarySI", suffix
    if suffix in _DECIMAL:
        return base.scaleb(_DECIMAL[suffix]), "DecimalSI", suffix
    if suffix[:1] in ("e", "E"):
        try:
            exp = int(suffix[1:])
        except ValueError:
            raise QuantityError(QUANTITY_ERROR) from None
        if base != 0 and abs(base.adjusted() + exp) > MAX_EXPONENT:
            raise QuantityError(OUT_OF_RANGE)
        return base.scaleb(exp), "DecimalExponent", suffix
    raise QuantityError("unable to parse quantity's suffix")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value; raises QuantityError. Numbers are accepted as Kubernetes does in JSON."""
    if isinstance(value, bool):
        raise QuantityError(QUANTITY_ERROR)
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    return _split(value)[0]


def _round_nano(v: Decimal) -> Decimal:
    return v.quantize(Decimal("1e-9"), rounding=ROUND_CEILING) if v.as_tuple().exponent < -9 else v  # type: ignore[operator]


def _decimal_parts(v: Decimal) -> tuple[int, int]:
    """(mantissa, exponent multiple of 3, >= -9) with v == mantissa * 10**exponent."""
    v = _round_nano(v)
    if v == 0:
        return 0, 0
    exp = -9
    mant = int((v.scaleb(9)).to_integral_value())
    while mant % 1000 == 0 and exp < 18:
        mant //= 1000
        exp += 3
    return mant, exp


def canonical(value: str | int | float) -> str:
    """Kubernetes' canonical string for a quantity (what the server stores and returns)."""
    if isinstance(value, bool):
        raise QuantityError(QUANTITY_ERROR)
    if isinstance(value, (int, float)):
        v, fmt = Decimal(str(value)), "DecimalSI"
        if not v.is_finite() or (v != 0 and abs(v.adjusted()) > MAX_EXPONENT):
            raise QuantityError(OUT_OF_RANGE)
    else:
        v, fmt, _ = _split(value)
    if fmt == "BinarySI":
        if -1024 < v < 1024 or v != v.to_integral_value():
            fmt = "DecimalSI"
        else:
            n = int(v)
            sign = "-" if n < 0 else ""
            n = abs(n)
            shift = 0
            while shift < 60 and n % 1024 == 0 and n:
                n //= 1024
                shift += 10
            return f"{sign}{n}{_BIN_SUFFIX.get(shift, '')}"
    mant, exp = _decimal_parts(v)
    if mant == 0:
        return "0"
    if fmt == "DecimalExponent":
        return f"{mant}e{exp}" if exp else str(mant)
    return f"{mant}{_DEC_SUFFIX[exp]}"


def int_value(q: Any) -> int | None:
    """The quantity as an integer (bytes for memory), truncated; None if absent or malformed."""
    if q is None:
        return None
    try:
        return int(parse_quantity(str(q)))
    except QuantityError:
        return None


def milli_value(q: Any) -> int | None:
    """The quantity in thousandths (millicores for cpu), rounded up; None if absent or malformed."""
    if q is None:
        return None
    try:
        v = parse_quantity(str(q)) * 1000
        return int(-(-v // 1))
    except QuantityError:
        return None
