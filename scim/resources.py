"""The SCIM resources this service serves, as scim2-models models, and their mapping onto ours.

scim2-models defines the RFC 7643 resources, the discovery documents, PatchOp, ListResponse and
Error; this module only declares the au-prescriber extension and says which SCIM attribute is
which of our fields, once, for both directions (rendering, and naming the attribute in errors)."""

import hashlib
from typing import Annotated, Any

import orjson
from django.conf import settings
from pydantic import Field
from scim2_models import (
    URN,
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ComplexAttribute,
    Context,
    ETag,
    Extension,
    Filter,
    Group,
    GroupMember,
    GroupMembership,
    Meta,
    Mutability,
    Patch,
    Required,
    Resource,
    ResourceType,
    ScimPolicy,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models.resources.service_provider_config import Pagination

from accounts import roles as role_names
from identifiers.checks import PRESCRIBER_TYPES, SEXES

EXTENSION_SCHEMA = "urn:ietf:params:scim:schemas:extension:au-prescriber:2.0:User"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_COUNT = 200  # the largest page a list answers (ServiceProviderConfig filter.maxResults)


def _codes(choices) -> list[str]:
    return [code for code, _label in choices]


class AuPrescriber(Extension):
    """The provider details (accounts.ProviderDetails) of a prescriber. The provider's own names and
    phone are not here: they follow the user's `name` and `phoneNumbers`."""

    __schema__ = URN(EXTENSION_SCHEMA)

    date_of_birth: str | None = Field(None, description="ISO date (YYYY-MM-DD), in the past, not before 1900.")
    sex: str | None = Field(None, description="M, F, I or N.", examples=_codes(SEXES))
    hpii_number: str | None = Field(None, description="HPI-I: 16 digits, prefix 800361, Luhn check digit.")
    prescriber_type: str | None = Field(None, description="M, N, D, P or T.", examples=_codes(PRESCRIBER_TYPES))
    prescriber_number: str | None = Field(None, description="PBS prescriber number: 7 digits.")
    qualifications: str | None = None
    provider_number: str | None = Field(None, description="Medicare provider number.")
    ahpra_number: str | None = Field(None, description="Three letters and ten digits.")
    hospital_provider_number: str | None = None
    verification_status: Annotated[str | None, Mutability.read_only] = Field(
        None,
        description="What the HI Service said about these details (unverified, pending, verified, mismatch, "
        "not_found, inactive, error); prescribing needs verified. Read-only.",
    )


class AuName(ComplexAttribute):
    """Every user has a given and a family name (the REST API's rule), so the schema says so."""

    family_name: Annotated[str | None, Required.true] = None
    given_name: Annotated[str | None, Required.true] = None


class AuEmail(ComplexAttribute):
    value: Annotated[str | None, Required.true] = None
    # Shown as "work": Entra ID addresses the e-mail as emails[type eq "work"].value.
    type: str | None = Field(None, examples=["work"])
    primary: bool | None = None


class AuPhoneNumber(ComplexAttribute):
    value: str | None = None
    type: str | None = Field(None, examples=["work"])
    primary: bool | None = None


class AuRole(ComplexAttribute):
    value: str | None = Field(None, examples=sorted(role_names.ASSIGNABLE_ROLES))


class AuUser(Resource[AnyExtension]):
    """The core User schema as this service keeps it. Only what is stored is declared, so the
    published schema says what comes back; anything else an identity provider sends is ignored
    (POLICY). A name and an e-mail are required (an e-mail-shaped userName stands in for `emails`,
    see fill_emails_from_user_name); `roles` takes the assignable roles (canonicalValues)."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    name: Annotated[AuName | None, Required.true] = None
    display_name: Annotated[str | None, Mutability.read_only] = None
    title: str | None = None
    active: bool | None = None
    emails: Annotated[list[AuEmail] | None, Required.true] = None
    phone_numbers: list[AuPhoneNumber] | None = None
    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = None
    roles: list[AuRole] | None = None


ScimUser = AuUser[AuPrescriber]


def fill_emails_from_user_name(payload: dict) -> dict:
    """The contract's fallback: with no `emails`, an e-mail-shaped userName is the e-mail."""
    user_name = payload.get("userName")
    if not payload.get("emails") and isinstance(user_name, str) and "@" in user_name:
        payload = {**payload, "emails": [{"value": user_name, "primary": True}]}
    return payload


# Shown, never written: the register's verdict is the verification app's to set.
READ_ONLY_EXTENSION_FIELDS = ("verification_status",)
# Extension attribute (python name) -> provider-details field. The same names, by design.
EXTENSION_FIELDS = {
    name: name for name in AuPrescriber.model_fields if name not in ("schemas", *READ_ONLY_EXTENSION_FIELDS)
}

# Our field (as the REST API's validation names it) -> the SCIM attribute an error names.
ATTRIBUTE_OF_FIELD = {
    "email": "emails",
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "title": "title",
    "phone": "phoneNumbers",
    "access_roles": "roles",
    "provider_details.given_name": "name.givenName",
    "provider_details.family_name": "name.familyName",
    "provider_details.phone": "phoneNumbers",
    **{
        f"provider_details.{field}": f"{EXTENSION_SCHEMA}:{AuPrescriber._scim_name(name)}"
        for name, field in EXTENSION_FIELDS.items()
    },
}

# How the identity providers' payloads are read. Entra ID and Okta send attributes we don't keep
# (and Entra's `value` on remove, and filters matching no entry yet): ignore, don't refuse.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def scim_attribute(field: str | None) -> str | None:
    if field is None:
        return None
    return ATTRIBUTE_OF_FIELD.get(field, field)


# --- discovery ------------------------------------------------------------------------------------


def service_provider_config(base_url: str) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        # No Bulk endpoint; its two RFC 7643 §5 limits are the ones every request meets: the
        # operations of one PATCH (SCIM_MAX_PATCH_OPERATIONS) and the body's size.
        bulk=Bulk(
            supported=False,
            max_operations=settings.SCIM_MAX_PATCH_OPERATIONS,
            max_payload_size=settings.MAX_REQUEST_BODY_BYTES,
        ),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        pagination=Pagination(cursor=False, index=True, default_pagination_method="index"),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="The token from `manage.py create_scim_token`, as `Authorization: Bearer <token>`.",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base_url}/ServiceProviderConfig"),
    )


def schemas(base_url: str) -> list:
    documents = []
    for model in (AuUser, AuPrescriber, Group):
        schema = model.to_schema()
        if model is Group:
            _state_member_cap(schema)
        schema.meta = Meta(resource_type="Schema", location=f"{base_url}/Schemas/{schema.id}")
        documents.append(schema)
    return documents


def _state_member_cap(schema) -> None:
    """RFC 7644 has no field for a cap on members per request (only Bulk's maxOperations, used for
    the operations of a PATCH), so the Group schema's `members` says it where a client reads it."""
    members = next(attribute for attribute in schema.attributes if attribute.name == "members")
    members.description = (
        f"{members.description} At most {settings.SCIM_MAX_GROUP_MEMBERS} members in one request "
        "(a PATCH's operations together, or a PUT); more are refused with 400 invalidValue."
    )


def resource_types(base_url: str) -> list[ResourceType]:
    types = []
    for model in (ScimUser, Group):
        resource_type = ResourceType.from_resource(model)
        resource_type.meta = Meta(resource_type="ResourceType", location=f"{base_url}/ResourceTypes/{resource_type.id}")
        types.append(resource_type)
    return types


# --- our rows -> SCIM ----------------------------------------------------------------------------


def version_of(payload: dict) -> str:
    """A weak ETag over the resource as SCIM shows it: it changes exactly when the resource does."""
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
    return f'W/"{digest}"'


def user_resource(user, identity, base_url: str) -> Any:
    """The SCIM User of a practice user (`identity` its ScimIdentity, or None if SCIM never wrote it)."""
    details = getattr(user, "provider_details", None)
    extension = None
    if details is not None:
        values = {name: getattr(details, field) for name, field in EXTENSION_FIELDS.items()}
        values["date_of_birth"] = details.date_of_birth.isoformat() if details.date_of_birth else None
        extension = AuPrescriber(
            **{name: (value or None) for name, value in values.items()},
            verification_status=details.verification_status,
        )
    assignable = [role for role in user.roles if role in role_names.ASSIGNABLE_ROLES]
    resource = ScimUser(
        id=str(user.pk),
        external_id=(identity.external_id or None) if identity else None,
        user_name=identity.user_name if identity else user.email,
        name=AuName(given_name=user.given_name, family_name=user.family_name),
        display_name=user.get_full_name(),
        title=user.title or None,
        active=user.is_active,
        emails=[AuEmail(value=user.email, type="work", primary=True)],
        phone_numbers=[AuPhoneNumber(value=user.phone, type="work", primary=True)] if user.phone else None,
        roles=[AuRole(value=role) for role in assignable] or None,
        groups=[GroupMembership(value=role, display=role, ref=f"{base_url}/Groups/{role}") for role in assignable]
        or None,
    )
    if extension is not None:
        resource[AuPrescriber] = extension
    modified = max(
        stamp
        for stamp in (
            user.updated_at,
            details.updated_at if details else None,
            identity.updated_at if identity else None,
        )
        if stamp is not None
    )
    resource.meta = Meta(
        resource_type="User",
        created=user.created_at,
        last_modified=modified,
        location=f"{base_url}/Users/{user.pk}",
    )
    resource.meta.version = version_of(dump(resource))
    return resource


def group_resource(role: str, members, base_url: str) -> Group:
    """The group of one assignable role; `members` are (user id, display name) pairs."""
    group = Group(
        id=role,
        display_name=role,
        members=[
            GroupMember(value=str(user_id), display=display, ref=f"{base_url}/Users/{user_id}", type="User")
            for user_id, display in members
        ]
        or None,
    )
    group.meta = Meta(resource_type="Group", location=f"{base_url}/Groups/{role}")
    group.meta.version = version_of(dump(group))
    return group


def dump(resource, *, response_parameters=None) -> dict:
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=response_parameters)


# --- SCIM -> our fields --------------------------------------------------------------------------


def _primary(values):
    if not values:
        return None
    chosen = next((item for item in values if item.primary), values[0])
    return chosen.value


def desired_fields(resource) -> dict:
    """The user fields, roles and provider details a SCIM User says the user should have, in the REST
    API's input shape (so the REST API's own serializers validate them). Keys are only present for
    what the resource carries: `roles` and the extension absent mean "leave as they are"."""
    email = _primary(resource.emails)
    name = resource.name or AuName()
    body = {
        "email": email or "",
        "given_name": name.given_name or "",
        "family_name": name.family_name or "",
        "title": resource.title or "",
        "phone": _primary(resource.phone_numbers) or "",
    }
    if resource.roles is not None:
        roles = [role.value for role in resource.roles if role.value is not None]
        body["access_roles"] = roles or list(role_names.DEFAULT_ROLES)
    extension = resource[AuPrescriber]
    if extension is not None:
        details = {}
        for attr, field in EXTENSION_FIELDS.items():
            value = getattr(extension, attr)
            if field in ("date_of_birth", "hpii_number"):
                details[field] = value or None
            else:
                details[field] = value or ""
        body["provider_details"] = details
    return body


def current_fields(user) -> dict:
    """The same shape as desired_fields, for what is stored."""
    body = {
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "title": user.title,
        "phone": user.phone,
        "access_roles": sorted(user.roles),
    }
    details = getattr(user, "provider_details", None)
    if details is not None:
        body["provider_details"] = {
            field: (
                details.date_of_birth.isoformat()
                if field == "date_of_birth" and details.date_of_birth
                else getattr(details, field)
            )
            for field in EXTENSION_FIELDS.values()
        }
    return body
