"""Money: integer minor units plus an ISO 4217 currency; never float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, Field

# Currencies whose minor unit is not 1/100 (ISO 4217 exponent).
_EXPONENT = {
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


def exponent(currency: str) -> int:
    return _EXPONENT.get(currency.upper(), 2)


class Money(BaseModel):
    amount_minor: int = Field(description="Amount in minor units (cents for USD).")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 currency code.")

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-exponent(self.currency))

    def display(self) -> str:
        return f"{self.amount:,.{exponent(self.currency)}f} {self.currency}"


def to_minor(amount: Decimal | int | str, currency: str) -> int:
    """Major units (e.g. '1234.56') → minor units, rounding half-even at the currency's exponent."""
    quantum = Decimal(1).scaleb(-exponent(currency))
    value = Decimal(str(amount)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    return int(value.scaleb(exponent(currency)))


def money(amount_minor: int, currency: str) -> Money:
    return Money(amount_minor=amount_minor, currency=currency.upper())
