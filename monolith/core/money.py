"""Money arithmetic with the shop's rounding rule (half up, to the cent)."""

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def quantize(amount: Decimal | int | str) -> Decimal:
    """Round an amount to cents, half up, as invoices do."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def total(amounts: Iterable[Decimal]) -> Decimal:
    """Sum amounts and round the result to cents."""
    return quantize(sum(amounts, Decimal("0")))


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """`percent` % of `amount`, rounded to cents."""
    return quantize(amount * percent / Decimal(100))
