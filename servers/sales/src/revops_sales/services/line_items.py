"""Line items of a deal, and the rule that ties the deal's amount to them.

Rule: while a deal has line items, its amount is the sum of their totals, kept up to date on every
add and remove (each change recorded in `sales_deal_change`, as a hand edit would be) and not
editable by hand. A line total is quantity × unit price × (1 − discount), rounded half-even to a
minor unit per line. Every line is in the deal's currency; another currency is refused (no
conversion). When the last line is removed the amount keeps its value and is editable again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.money import Money, money
from revops_core.outputs import Out
from revops_core.params import MAX_MINOR
from revops_sales.models.deal_work import SalesLineItem
from revops_sales.models.deals import SalesDeal, SalesDealChange

BASIS_POINTS = 10_000


class LineItemOut(Out):
    id: int = Field(description="Line item id.")
    product: str = Field(description="Product name.")
    quantity: int = Field(description="Units.")
    unit_price: Money = Field(description="Price per unit (the deal's currency).")
    discount_bp: int = Field(description="Discount, basis points (1250 = 12.5 %).")
    total: Money = Field(description="quantity × unit price − discount, rounded half-even.")


def _out(row: SalesLineItem) -> LineItemOut:
    return LineItemOut(
        id=row.id or 0,
        product=row.product,
        quantity=row.quantity,
        unit_price=money(row.unit_price_minor, row.currency),
        discount_bp=row.discount_bp,
        total=money(row.total_minor, row.currency),
    )


def line_total(quantity: int, unit_price_minor: int, discount_bp: int) -> int:
    gross = Decimal(quantity) * Decimal(unit_price_minor)
    net = gross * Decimal(BASIS_POINTS - discount_bp) / Decimal(BASIS_POINTS)
    return int(net.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def of_deal(session: Session, deal_id: int) -> list[LineItemOut]:
    rows = session.exec(
        select(SalesLineItem).where(SalesLineItem.deal_id == deal_id).order_by(col(SalesLineItem.id))
    )
    return [_out(r) for r in rows]


def count(session: Session, deal_id: int) -> int:
    query = select(func.count()).select_from(SalesLineItem).where(SalesLineItem.deal_id == deal_id)
    return int(session.exec(query).one())


def _sync_amount(session: Session, deal: SalesDeal, actor: str, at: datetime) -> None:
    total = session.exec(
        select(func.coalesce(func.sum(SalesLineItem.total_minor), 0)).where(SalesLineItem.deal_id == deal.id)
    ).one()
    if count(session, deal.id or 0) == 0:
        return  # no lines left: the amount stays as it was and is the deal's own again
    total = int(total)
    if total > MAX_MINOR:
        raise ValidationFailed(
            f"The line items would total {total} minor units, above {MAX_MINOR}.", field="quantity"
        )
    if total != deal.amount_minor:
        session.add(
            SalesDealChange(
                deal_id=deal.id or 0,
                field="amount_minor",
                old_value=str(deal.amount_minor),
                new_value=str(total),
                actor=actor,
                at=at,
            )
        )
        deal.amount_minor = total
        deal.updated_at = at
        session.add(deal)
    session.flush()


def add(
    session: Session,
    deal: SalesDeal,
    *,
    product: str,
    quantity: int,
    unit_price_minor: int,
    currency: str | None,
    discount_bp: int,
    actor: str,
    at: datetime,
) -> int:
    """Add a line (the deal's amount follows); returns its id."""
    if currency is not None and currency != deal.currency:
        raise ValidationFailed(
            f"Line item currency {currency} differs from the deal's {deal.currency}.",
            field="currency",
            hint=f"Price the line in {deal.currency} (no conversion is made), or omit currency.",
        )
    total = line_total(quantity, unit_price_minor, discount_bp)
    if total > MAX_MINOR:
        raise ValidationFailed(f"The line totals {total} minor units, above {MAX_MINOR}.", field="quantity")
    row = SalesLineItem(
        deal_id=deal.id or 0,
        product=product,
        quantity=quantity,
        unit_price_minor=unit_price_minor,
        currency=deal.currency,
        discount_bp=discount_bp,
        total_minor=total,
        created_at=at,
    )
    session.add(row)
    session.flush()
    _sync_amount(session, deal, actor, at)
    return row.id or 0


def remove(session: Session, deal: SalesDeal, line_item_id: int, *, actor: str, at: datetime) -> None:
    row = session.get(SalesLineItem, line_item_id)
    if row is None or row.deal_id != deal.id:
        raise NotFound(
            f"Deal {deal.id} has no line item {line_item_id}.",
            field="line_item_id",
            hint="See the deal's line_items with get_deal.",
        )
    session.delete(row)
    session.flush()
    _sync_amount(session, deal, actor, at)
