from django.contrib import admin
from django.urls import include, path, re_path
from oauth2_provider.views import TokenView

from accounts.api.views import OrganizationViewSet
from config.views import api_not_found, healthz

organization_detail = OrganizationViewSet.as_view({"get": "retrieve"})

api_v1 = [
    path("oauth/token", TokenView.as_view(), name="oauth-token"),
    path("organizations/<str:organization_id>", organization_detail, name="organization-detail"),
    path("", include("accounts.api.urls")),
    # Anything else under /v1 is a problem+json 404, in DEBUG too (Django's debug 404 page is HTML).
    re_path(r"^.*$", api_not_found),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("v1/", include(api_v1)),
    path("admin/", admin.site.urls),
]

handler404 = "config.views.not_found"
handler500 = "config.views.internal_error"
