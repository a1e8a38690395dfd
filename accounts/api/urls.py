from rest_framework.routers import SimpleRouter

from accounts.api.audit_events import AuditEventViewSet
from accounts.api.views import UserViewSet

router = SimpleRouter(trailing_slash=False)
router.register(r"organizations/(?P<organization_id>[^/]+)/users", UserViewSet, basename="user")
router.register(
    r"organizations/(?P<organization_id>[^/]+)/audit-events", AuditEventViewSet, basename="audit-event"
)

urlpatterns = router.urls
