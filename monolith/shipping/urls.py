from rest_framework.routers import SimpleRouter

from monolith.shipping.views import ShipmentViewSet, ShippingMethodViewSet

router = SimpleRouter(trailing_slash=False)
router.register("shipments", ShipmentViewSet, basename="shipment")
router.register("shipping-methods", ShippingMethodViewSet, basename="shipping-method")
urlpatterns = router.urls
