from rest_framework.metadata import BaseMetadata


class NoSchemaMetadata(BaseMetadata):
    """OPTIONS answers with the `Allow` header and an empty object: no request schema, field list
    or view description (DRF's SimpleMetadata describes the POST/PUT body to anyone who asks; the
    OpenAPI document at /v1/schema is where the shapes are published)."""

    def determine_metadata(self, request, view):
        return {}
