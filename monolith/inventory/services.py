"""Stock arithmetic: reserve at checkout, consume at dispatch, release or restock on refund."""

from django.db import transaction
from django.db.models import F, Sum

from monolith.inventory.models import StockLevel, StockReservation


class InsufficientStock(Exception):
    """Raised when an order line asks for more units than all warehouses have available."""

    def __init__(self, sku: str, wanted: int, available: int):
        super().__init__(f"only {available} of {wanted} units of {sku} are available")
        self.sku, self.wanted, self.available = sku, wanted, available


def available_for(product_id: int) -> int:
    """Units of a product that can still be sold, over all warehouses."""
    totals = StockLevel.objects.filter(product_id=product_id).aggregate(
        quantity=Sum("quantity"), reserved=Sum("reserved")
    )
    return (totals["quantity"] or 0) - (totals["reserved"] or 0)


@transaction.atomic
def reserve_order(order) -> list[StockReservation]:
    """Hold stock for every line, best warehouse first; all or nothing."""
    reservations = []
    for line in order.lines.select_related("product"):
        wanted = line.quantity
        levels = (
            StockLevel.objects.select_for_update()
            .filter(product_id=line.product_id)
            .order_by("warehouse__priority", "warehouse_id")
        )
        for level in levels:
            take = min(wanted, level.available)
            if take <= 0:
                continue
            StockLevel.objects.filter(pk=level.pk).update(reserved=F("reserved") + take)
            reservations.append(StockReservation(order=order, stock_level=level, quantity=take))
            wanted -= take
            if wanted == 0:
                break
        if wanted:
            raise InsufficientStock(line.sku, line.quantity, line.quantity - wanted)
    return StockReservation.objects.bulk_create(reservations)


def _settle(order, from_status: str, to_status: str, quantity_delta: int, reserved_delta: int):
    """Move an order's reservations between states, adjusting the stock levels they hold."""
    reservations = StockReservation.objects.select_for_update().filter(
        order=order, status=from_status
    )
    for reservation in reservations:
        StockLevel.objects.filter(pk=reservation.stock_level_id).update(
            quantity=F("quantity") + quantity_delta * reservation.quantity,
            reserved=F("reserved") + reserved_delta * reservation.quantity,
        )
    return reservations.update(status=to_status)


@transaction.atomic
def release_order(order) -> int:
    """Give back held units of an order that will not ship."""
    active = StockReservation.Status.ACTIVE
    return _settle(order, active, StockReservation.Status.RELEASED, 0, -1)


@transaction.atomic
def consume_order(order) -> int:
    """The goods left the warehouse: on-hand and held units both go down."""
    active = StockReservation.Status.ACTIVE
    return _settle(order, active, StockReservation.Status.CONSUMED, -1, -1)


@transaction.atomic
def restore_order(order) -> int:
    """Undo an order's effect on stock, whether it shipped (returned) or not (released)."""
    returned = _settle(
        order, StockReservation.Status.CONSUMED, StockReservation.Status.RETURNED, 1, 0
    )
    return returned + release_order(order)


def low_stock_levels(product_ids):
    """Stock levels of these products whose available units fell to the reorder level."""
    return StockLevel.objects.filter(
        product_id__in=product_ids,
        quantity__lte=F("reserved") + F("reorder_level"),
    ).select_related("product", "warehouse")
