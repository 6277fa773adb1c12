"""A shopper buys two products through the monolith's real HTTP API; print what each app did."""

from __future__ import annotations

from strangler.demo.context import DemoContext, DemoError
from strangler.demo.http import Api

TITLE = "Check out over HTTP (cart -> order -> stock -> payment -> shipment -> e-mail)"
SHOPPER = {"username": "demo-shopper", "email": "shopper@example.com", "password": "demo-pass-1"}
ADDRESS = {"full_name": "Demo Shopper", "line1": "1 Strangler Fig Way", "city": "Berlin",
           "postcode": "10115", "country": "DE"}  # fmt: skip


def pick_products(api: Api, count: int = 2) -> list[dict]:
    """The first active products that have units available."""
    picked = []
    for product in api.get("/api/v1/products", is_active="true", page_size=20)["results"]:
        if stock_of(api, product["id"])["available"] >= 2:
            picked.append(product)
        if len(picked) == count:
            return picked
    raise DemoError("the seeded catalog has no two products in stock")


def stock_of(api: Api, product_id: int) -> dict[str, int]:
    levels = api.get("/api/v1/stock", product=product_id)["results"]
    return {
        key: sum(level[key] for level in levels) for key in ("quantity", "reserved", "available")
    }


def run(ctx: DemoContext) -> None:
    anonymous = ctx.stack.enter_context(Api(ctx.monolith_url))
    registered = anonymous.post("/api/v1/customers/register", SHOPPER, expect=201)
    api = ctx.stack.enter_context(Api(ctx.monolith_url, token=registered["token"]))
    ctx.log(f"registered {SHOPPER['username']} (token auth)")
    address = api.post("/api/v1/addresses", ADDRESS, expect=201)

    products = pick_products(anonymous)
    before = {p["id"]: stock_of(anonymous, p["id"]) for p in products}
    for quantity, product in enumerate(products, start=1):
        item = {"product": product["id"], "quantity": quantity}
        cart = api.post("/api/v1/cart/items", item, expect=201)
    for item in cart["items"]:
        ctx.log(f"cart: {item['quantity']} x {item['sku']} {item['name']} @ {item['unit_price']}")

    checkout = {
        "address": address["id"],
        "shipping_method": "standard",
        "payment_token": "tok_demo",
    }
    order = api.post("/api/v1/checkout", checkout, expect=201)
    ctx.log(
        f"order {order['number']}: {order['status']}, total {order['total']} {order['currency']}"
    )

    for quantity, product in enumerate(products, start=1):
        after = stock_of(anonymous, product["id"])
        held = after["reserved"] - before[product["id"]]["reserved"]
        if held != quantity:
            raise DemoError(f"{product['sku']}: expected {quantity} reserved, found {held}")
        ctx.log(f"stock {product['sku']}: {held} reserved by the order_placed signal "
                f"({after['available']} still available)")  # fmt: skip

    payment = api.get("/api/v1/payments", order__number=order["number"])["results"][0]
    shipment = api.get("/api/v1/shipments", order__number=order["number"])["results"][0]
    mails = api.get("/api/v1/notifications")["results"]
    ctx.log(f"payment {payment['gateway_reference']}: {payment['status']} {payment['amount']}")
    ctx.log(f"shipment {shipment['tracking_number']}: {shipment['status']} "
            f"from {shipment['warehouse']}")  # fmt: skip
    for mail in reversed(mails):
        ctx.log(f"e-mail to {mail['recipient']}: {mail['subject']!r} (Celery task)")

    problems = []
    if order["status"] != "paid":
        problems.append(f"order is {order['status']}, expected paid")
    if payment["status"] != "captured":
        problems.append(f"payment is {payment['status']}, expected captured")
    kinds = {mail["kind"] for mail in mails}
    if not {"order_confirmation", "shipment_pending"} <= kinds:
        problems.append(f"expected confirmation and shipment e-mails, got {sorted(kinds)}")
    if problems:
        raise DemoError("checkout did not complete: " + "; ".join(problems))
    ctx.facts["checkout"] = {
        "order": order["number"],
        "status": order["status"],
        "total": order["total"],
        "payment": payment["status"],
        "shipment": shipment["tracking_number"],
        "emails": sorted(kinds),
        "customer_token": registered["token"],
    }
