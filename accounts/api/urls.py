from rest_framework.routers import SimpleRouter

from accounts.api.views import UserViewSet
from audit.api import AuditEventViewSet

router = SimpleRouter(trailing_slash=False)
router.register(r"organizations/(?P<organization_id>[^/]+)/users", UserViewSet, basename="user")
router.register(
    r"organizations/(?P<organization_id>[^/]+)/audit-events", AuditEventViewSet, basename="audit-event"
)

urlpatterns = router.urls
