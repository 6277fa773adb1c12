"""Report queries that join orders, lines, payments, refunds, stock and the catalog."""

from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from monolith.catalog.models import Product
from monolith.core.money import quantize
from monolith.inventory.models import StockLevel
from monolith.orders.models import Order, OrderLine
from monolith.payments.models import Refund

ZERO = Value(Decimal("0.00"), output_field=DecimalField(max_digits=12, decimal_places=2))
SOLD = [Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED, Order.Status.REFUNDED]


def sales_by_day(start: date, end: date) -> list[dict]:
    """Per day from `start` to `end` inclusive: orders sold, items, revenue, refunds, net."""
    orders = Order.objects.filter(
        status__in=SOLD, placed_at__date__gte=start, placed_at__date__lte=end
    )
    days = {
        row["day"]: row
        for row in orders.annotate(day=TruncDate("placed_at"))
        .values("day")
        .annotate(orders=Count("id"), revenue=Coalesce(Sum("total"), ZERO))
    }
    items = dict(
        OrderLine.objects.filter(order__in=orders)
        .annotate(day=TruncDate("order__placed_at"))
        .values("day")
        .annotate(items=Sum("quantity"))
        .values_list("day", "items")
    )
    refunds = dict(
        Refund.objects.filter(payment__order__in=orders)
        .annotate(day=TruncDate("payment__order__placed_at"))
        .values("day")
        .annotate(amount=Sum("amount"))
        .values_list("day", "amount")
    )
    rows = []
    for day in sorted(days):
        refunded = quantize(refunds.get(day) or 0)
        revenue = quantize(days[day]["revenue"])
        rows.append(
            {
                "day": day,
                "orders": days[day]["orders"],
                "items": items.get(day) or 0,
                "revenue": revenue,
                "refunded": refunded,
                "net": revenue - refunded,
            }
        )
    return rows


def top_products(limit: int = 10) -> list[dict]:
    """Best sellers by units over sold orders, with their category."""
    rows = (
        OrderLine.objects.filter(order__status__in=SOLD)
        .values("product_id", "sku", "name", category=F("product__category__name"))
        .annotate(units=Sum("quantity"), revenue=Sum("line_total"))
        .order_by("-units", "product_id")[:limit]
    )
    return [{**row, "revenue": quantize(row["revenue"])} for row in rows]


def stock_report(low_only: bool = False) -> list[dict]:
    """Stock per product over all warehouses, with what is reserved for open orders."""
    products = Product.objects.filter(is_active=True).annotate(
        on_hand=Coalesce(Sum("stock__quantity"), 0),
        reserved=Coalesce(Sum("stock__reserved"), 0),
        warehouses=Count("stock__warehouse", distinct=True),
        low_levels=Count(
            "stock", filter=Q(stock__quantity__lte=F("stock__reserved") + F("stock__reorder_level"))
        ),
    )
    if low_only:
        products = products.filter(low_levels__gt=0)
    return [
        {
            "product_id": p.id,
            "sku": p.sku,
            "category": p.category.name,
            "on_hand": p.on_hand,
            "reserved": p.reserved,
            "available": p.on_hand - p.reserved,
            "warehouses": p.warehouses,
        }
        for p in products.select_related("category").order_by("id")
    ]


def customer_lifetime_values(limit: int = 20) -> list[dict]:
    """Best customers by net spend. Raw SQL, as the finance team wrote it years ago."""
    sql = """
        SELECT c.id, u.username, u.email,
               COUNT(DISTINCT o.id) AS orders,
               COALESCE(SUM(p.amount), 0) AS paid,
               COALESCE((SELECT SUM(r.amount) FROM payments_refund r
                         JOIN payments_payment rp ON rp.id = r.payment_id
                         JOIN orders_order ro ON ro.id = rp.order_id
                         WHERE ro.customer_id = c.id), 0) AS refunded
        FROM customers_customer c
        JOIN auth_user u ON u.id = c.user_id
        JOIN orders_order o ON o.customer_id = c.id
        JOIN payments_payment p ON p.order_id = o.id
        WHERE p.status IN ('captured', 'refunded', 'partially_refunded')
        GROUP BY c.id, u.username, u.email
        ORDER BY COALESCE(SUM(p.amount), 0) DESC, c.id
        LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        columns = [col[0] for col in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["paid"], row["refunded"] = quantize(row["paid"]), quantize(row["refunded"])
        row["net"] = row["paid"] - row["refunded"]
    return rows


def stock_totals() -> dict:
    return StockLevel.objects.aggregate(
        on_hand=Coalesce(Sum("quantity"), 0), reserved=Coalesce(Sum("reserved"), 0)
    )
