from rest_framework.routers import SimpleRouter

from verification.api.views import ProviderVerificationViewSet

router = SimpleRouter(trailing_slash=False)
router.register(
    r"organizations/(?P<organization_id>[^/]+)/users", ProviderVerificationViewSet, basename="provider-verification"
)

urlpatterns = router.urls
