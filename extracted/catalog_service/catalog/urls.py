from rest_framework.routers import SimpleRouter

from extracted.catalog_service.catalog.api import CategoryViewSet, ProductViewSet

router = SimpleRouter(trailing_slash=False)
router.register("categories", CategoryViewSet, basename="category")
router.register("products", ProductViewSet, basename="product")
urlpatterns = router.urls
