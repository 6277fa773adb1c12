"""Price reductions: automatic discounts per product and a voucher on the whole order."""

from decimal import Decimal

from django.db.models import Max, Q
from django.utils import timezone

from monolith.core.money import percent_of, quantize
from monolith.promotions.models import Discount, Voucher


class VoucherError(Exception):
    """The code cannot be used; the message tells the shopper why."""


def best_discount_percent(product) -> Decimal:
    """The largest active discount on the product itself or on its category."""
    best = Discount.objects.filter(
        Q(products=product) | Q(categories=product.category_id), is_active=True
    ).aggregate(best=Max("percent_off"))["best"]
    return best or Decimal("0")


def voucher_for_code(code: str) -> Voucher:
    voucher = Voucher.objects.filter(code__iexact=code.strip()).first()
    if voucher is None or not voucher.is_usable(timezone.now()):
        raise VoucherError(f"voucher {code!r} does not exist or has expired")
    return voucher


def voucher_reduction(voucher: Voucher | None, subtotal: Decimal) -> Decimal:
    """What the voucher takes off `subtotal` (0 below its minimum order total)."""
    if voucher is None or subtotal < voucher.min_order_total:
        return Decimal("0.00")
    reduction = percent_of(subtotal, voucher.percent_off) + voucher.amount_off
    return quantize(min(reduction, subtotal))
