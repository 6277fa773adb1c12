from django.urls import path

from monolith.cart.views import CartItemsView, CartItemView, CartView, CartVoucherView

urlpatterns = [
    path("cart", CartView.as_view(), name="cart"),
    path("cart/items", CartItemsView.as_view(), name="cart-items"),
    path("cart/items/<int:pk>", CartItemView.as_view(), name="cart-item"),
    path("cart/voucher", CartVoucherView.as_view(), name="cart-voucher"),
]
