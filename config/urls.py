from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import TemplateView

from accounts.admin import own_password_change
from accounts.api.oauth import ApiTokenView
from accounts.api.views import OrganizationViewSet
from core.admin_security import RateLimitedAdminLoginForm, sign_in
from core.api.docs import PublicDocsView, PublicSchemaView
from core.views import api_not_found, healthz

organization_detail = OrganizationViewSet.as_view({"get": "retrieve"})

api_v1 = [
    path("oauth/token", ApiTokenView.as_view(), name="oauth-token"),
    path("organizations/<str:organization_id>", organization_detail, name="organization-detail"),
    path("", include("accounts.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("verification.api.urls")),
    path("schema", PublicSchemaView.as_view(), name="openapi-schema"),
    path("docs", PublicDocsView.as_view(), name="openapi-docs"),
    # Anything else under /v1 is a problem+json 404, in DEBUG too (Django's debug 404 page is HTML).
    re_path(r"^.*$", api_not_found),
]

# Admin sign-in is throttled per address and username (core/admin_security.py).
admin.site.login_form = RateLimitedAdminLoginForm
PRODUCT_NAME = "User management"
admin.site.site_header = f"{PRODUCT_NAME}: staff admin"
admin.site.site_title = f"{PRODUCT_NAME} admin"
admin.site.index_title = "Practices, users and audit"

urlpatterns = [
    # What `make run` prints and the admin's "View site" opens: links to the docs, the admin, health.
    path("", TemplateView.as_view(template_name="index.html", extra_context={"product_name": PRODUCT_NAME})),
    path("healthz", healthz, name="healthz"),
    # `/v1` itself: without it, APPEND_SLASH redirects a POST (a RuntimeError, 500, in DEBUG).
    path("v1", api_not_found),
    path("v1/", include(api_v1)),
    # Ahead of the admin's own login route: a 503 while the sign-in limits can't be kept.
    path("admin/login/", sign_in),
    # Ahead of the admin's own route too: a staff member's own password change is audited.
    path("admin/password_change/", admin.site.admin_view(own_password_change)),
    path("admin/", admin.site.urls),
    path("scim/v2/", include("scim.urls")),
]

handler400 = "core.views.bad_request"
handler404 = "core.views.not_found"
handler500 = "core.views.internal_error"
