"""Cart operations: one open cart per user, items priced when added."""

from django.db import transaction

from monolith.cart.models import Cart, CartItem
from monolith.catalog.models import Product
from monolith.core.money import percent_of
from monolith.inventory.services import available_for
from monolith.promotions.services import best_discount_percent


class CartError(Exception):
    """The cart change is not possible; the message tells the shopper why."""


def open_cart(user) -> Cart:
    cart, _ = Cart.objects.get_or_create(user=user, status=Cart.Status.OPEN)
    return cart


def unit_price(product: Product):
    """Today's price of one unit, after the best automatic discount."""
    return product.price - percent_of(product.price, best_discount_percent(product))


@transaction.atomic
def set_quantity(cart: Cart, product: Product, quantity: int) -> CartItem | None:
    """Put exactly `quantity` units of `product` in the cart (0 removes it)."""
    if quantity <= 0:
        CartItem.objects.filter(cart=cart, product=product).delete()
        return None
    if not product.is_active:
        raise CartError(f"product {product.sku} is no longer sold")
    available = available_for(product.pk)
    if quantity > available:
        raise CartError(f"only {available} units of {product.sku} are in stock")
    item, _ = CartItem.objects.update_or_create(
        cart=cart,
        product=product,
        defaults={"quantity": quantity, "unit_price": unit_price(product)},
    )
    return item


def add(cart: Cart, product: Product, quantity: int) -> CartItem | None:
    """Add `quantity` more units of `product`."""
    existing = cart.items.filter(product=product).values_list("quantity", flat=True).first()
    return set_quantity(cart, product, (existing or 0) + quantity)
