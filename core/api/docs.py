"""GET /v1/schema and GET /v1/docs: public, no token. (What every operation shares is core.api.schema; the
users API's annotations are accounts.api.schema, the token endpoint's accounts.api.token_schema.)"""

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny


class PublicSchemaView(SpectacularAPIView):
    """OpenAPI 3: YAML by default; JSON with ?format=json or `Accept: application/vnd.oai.openapi+json`."""

    authentication_classes = []
    permission_classes = [AllowAny]


class PublicDocsView(SpectacularSwaggerView):
    """Swagger UI; its assets come from our own /static/ (drf-spectacular-sidecar), never a CDN."""

    authentication_classes = []
    permission_classes = [AllowAny]
    url_name = "openapi-schema"
