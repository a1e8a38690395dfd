from rest_framework.routers import SimpleRouter

from webhooks.api.views import WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register(
    r"organizations/(?P<organization_id>[^/]+)/webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint"
)

urlpatterns = router.urls
