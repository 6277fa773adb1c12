from rest_framework.routers import SimpleRouter

from monolith.reviews.views import ReviewViewSet

router = SimpleRouter(trailing_slash=False)
router.register("reviews", ReviewViewSet, basename="review")
urlpatterns = router.urls
