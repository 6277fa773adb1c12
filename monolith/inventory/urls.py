from rest_framework.routers import SimpleRouter

from monolith.inventory.views import StockLevelViewSet, WarehouseViewSet

router = SimpleRouter(trailing_slash=False)
router.register("stock", StockLevelViewSet, basename="stock")
router.register("warehouses", WarehouseViewSet, basename="warehouse")
urlpatterns = router.urls
