"""Steps of the shopper's journey shared by the tests: fill the cart, check out."""


def fill_cart(client, *items) -> dict:
    """POST each (product, quantity) to the cart; returns the cart after the last one."""
    response = None
    for product, quantity in items:
        response = client.post("/api/v1/cart/items", {"product": product.id, "quantity": quantity})
        assert response.status_code == 201, response.json()
    return response.json()


def check_out(shopper, capture, token="tok_visa"):
    """Check the shopper's cart out, running on-commit work (tasks) as a real commit would."""
    payload = {
        "address": shopper["address"].id,
        "shipping_method": "standard",
        "payment_token": token,
    }
    with capture(execute=True):
        return shopper["client"].post("/api/v1/checkout", payload, format="json")
