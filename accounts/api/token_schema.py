"""The OpenAPI description of POST /v1/oauth/token (RFC 6749 §4.4): django-oauth-toolkit's plain
Django view is invisible to the generator, so a postprocessing hook (SPECTACULAR_SETTINGS'
POSTPROCESSING_HOOKS) adds it to the document."""

from core.api.schema import PROBLEM_MEDIA_TYPE, RETRY_AFTER, TOKEN_URL

_TOKEN_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": ["invalid_request", "unsupported_grant_type", "invalid_scope", "invalid_client", "rate_limited"],
            "example": "invalid_client",
        },
        "error_description": {"type": "string"},
    },
    "description": "RFC 6749 §5.2 error (`rate_limited` for 429).",
}


def _token_error_content(*examples):
    return {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/TokenError"},
            "examples": {
                error: {"value": {"error": error, "error_description": description}}
                for error, description in examples
            },
        }
    }


def add_token_endpoint(result, generator, request, public):
    """Postprocessing hook: document POST /v1/oauth/token (RFC 6749 §4.4)."""
    components = result.setdefault("components", {})
    components.setdefault("securitySchemes", {})["clientBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "The API client's id and secret, for the token endpoint only.",
    }
    components.setdefault("schemas", {}).update(
        {
            "TokenRequest": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "scope": {
                        "type": "string",
                        "description": "Space-separated subset of the client's scopes; all of them when omitted.",
                        "example": "read:users create:user",
                    },
                },
            },
            "TokenResponse": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in", "scope"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string", "enum": ["Bearer"]},
                    "expires_in": {"type": "integer", "example": 3600},
                    "scope": {"type": "string", "example": "read:users create:user update:user"},
                },
            },
            "TokenError": _TOKEN_ERROR,
        }
    )
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    result["paths"][TOKEN_URL] = {
        "post": {
            "operationId": "oauth_token_create",
            "summary": "Get an access token",
            "description": (
                "OAuth 2.0 client credentials grant. Authenticate the client with HTTP Basic "
                "(client id and secret from `create_api_client`); the token carries the scopes asked "
                "for, or all of the client's scopes. Only `grant_type=client_credentials` is served.\n\n"
                "After 10 failed client authentications for one client id within 10 minutes, that client "
                "id's requests are 429 until the 10 minutes have passed, the right secret included; one "
                "client address gets at most 100 failed authentications in 10 minutes."
            ),
            "tags": ["oauth"],
            "security": [{"clientBasic": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"$ref": "#/components/schemas/TokenRequest"},
                        "examples": {"all scopes": {"value": {"grant_type": "client_credentials"}}},
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "An access token (RFC 6749 §5.1).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}},
                },
                "400": {
                    "description": (
                        "`unsupported_grant_type`: any grant but `client_credentials` (answered before any "
                        "credential is looked at); `invalid_request`: no or several `grant_type`, any parameter "
                        "sent twice, or two client authentication methods at once (HTTP Basic and a "
                        "`client_secret` in the body, or a body `client_id` naming another client); "
                        "`invalid_scope`: a scope the client was not given."
                    ),
                    "content": _token_error_content(
                        ("unsupported_grant_type", "Only grant_type=client_credentials is served."),
                        ("invalid_request", "Send exactly one grant_type: client_credentials."),
                        ("invalid_scope", "The requested scope is invalid, unknown, or malformed."),
                    ),
                },
                "401": {
                    "description": (
                        "`invalid_client`: unknown client, wrong secret, no client authentication, a revoked "
                        "client, or a client of an inactive organization."
                    ),
                    "headers": {
                        "WWW-Authenticate": {
                            "description": "The HTTP Basic challenge (RFC 6749 §5.2).",
                            "schema": {"type": "string", "example": 'Basic realm="oauth", charset="UTF-8"'},
                        }
                    },
                    "content": _token_error_content(("invalid_client", "Client authentication failed.")),
                },
                "413": {"description": "The request body exceeds 1 MiB (`payload_too_large`).", "content": problem},
                "429": {
                    "description": (
                        "`rate_limited`: too many failed client authentications for this client id or "
                        "address; retry after `Retry-After` seconds."
                    ),
                    "headers": RETRY_AFTER,
                    "content": _token_error_content(
                        ("rate_limited", "Too many failed client authentications. Retry after 412 seconds.")
                    ),
                },
                "503": {
                    "description": "The database is unreachable (`database_unavailable`), the server is busy "
                    "with other writes (`server_busy`), or the cache that keeps the failed-authentication limits "
                    "is (`limits_unavailable`, also `\"error\": \"temporarily_unavailable\"`); retry after "
                    "`Retry-After`.",
                    "headers": RETRY_AFTER,
                    "content": problem,
                },
            },
        }
    }
    return result
