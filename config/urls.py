from django.contrib import admin
from django.urls import include, path, re_path

from accounts.api.oauth import ApiTokenView
from accounts.api.views import OrganizationViewSet
from config.admin_security import RateLimitedAdminLoginForm
from config.api.docs import PublicDocsView, PublicSchemaView
from config.views import api_not_found, healthz

organization_detail = OrganizationViewSet.as_view({"get": "retrieve"})

api_v1 = [
    path("oauth/token", ApiTokenView.as_view(), name="oauth-token"),
    path("organizations/<str:organization_id>", organization_detail, name="organization-detail"),
    path("", include("accounts.api.urls")),
    path("schema", PublicSchemaView.as_view(), name="openapi-schema"),
    path("docs", PublicDocsView.as_view(), name="openapi-docs"),
    # Anything else under /v1 is a problem+json 404, in DEBUG too (Django's debug 404 page is HTML).
    re_path(r"^.*$", api_not_found),
]

# Admin sign-in is throttled per address and username (config/admin_security.py).
admin.site.login_form = RateLimitedAdminLoginForm

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("scim/v2/", include("scim.urls")),
]

handler404 = "config.views.not_found"
handler500 = "config.views.internal_error"
