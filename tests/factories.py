"""factory-boy factories that make test data through the real services, never raw model saves.

Every object made here has what production data has: its django-simple-history rows, its audit
events, and (for practice users) its Cognito outbox row. Each `_create` calls the service the API,
the admin and the commands call; the factory only fills in plausible, valid defaults.

    OrganizationFactory()                          organizations.services.organization_create
    api_client, secret = ApiClientFactory(organization=org, scopes=("read:users",))
    UserFactory(organization=org)                  accounts.services.user_create (a member)
    UserFactory(organization=org, roles=["admin"])
    UserFactory(organization=org, provider=True)   a provider with complete, valid details
    UserFactory(organization=org, disabled=True)   then accounts.services.user_disable
    StaffFactory()                                 a platform superuser (the createsuperuser path)
    StaffFactory(actor=sam, permissions=[...])     staff who is no superuser, via accounts.staff

`actor=` says who makes it (default: the system actor "test setup"). `build()` is not offered:
an unsaved object skips the rules and the audit trail these factories exist to keep.
"""

import itertools

import factory

from accounts.models import User
from audit.context import Actor
from identifiers.checks import HPII_PREFIX, luhn_check_digit
from organizations.models import ApiClient, Organization

SETUP = Actor.system("test setup")
ALL_SCOPES = ("read:users", "create:user", "update:user", "delete:user", "read:audit")

_hpii_serials = itertools.count(1)


def valid_hpii(serial: int | None = None) -> str:
    """A valid HPI-I (prefix 800361, Luhn over all 16 digits), a different one on each call."""
    payload = f"{HPII_PREFIX}9{next(_hpii_serials) if serial is None else serial:08d}"
    return payload + str(luhn_check_digit(payload))


def provider_details(**overrides) -> dict:
    """Complete provider details (ProviderDetails.is_complete) with a fresh valid HPI-I."""
    details = {
        "date_of_birth": "1980-03-15",
        "sex": "F",
        "hpii_number": valid_hpii(),
        "prescriber_type": "M",
        "prescriber_number": "2345678",
        "qualifications": "MBBS",
    }
    details.update(overrides)
    return details


class _ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError(f"{cls.__name__} makes data through the services only: use {cls.__name__}() or .create().")


class OrganizationFactory(_ServiceFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Practice {n}")
    hpio_number = None
    actor = SETUP

    @classmethod
    def _create(cls, model_class, *, actor, **kwargs):
        from organizations.services import organization_create

        return organization_create(actor=actor, **kwargs)


class ApiClientFactory(_ServiceFactory):
    """Returns (api_client, secret): the secret is shown once, as api_client_create returns it."""

    class Meta:
        model = ApiClient

    organization = factory.SubFactory(OrganizationFactory)
    name = "Practice software"
    scopes = ALL_SCOPES
    actor = SETUP

    @classmethod
    def _create(cls, model_class, *, actor, scopes, **kwargs):
        from organizations.services import api_client_create

        return api_client_create(actor=actor, scopes=list(scopes), **kwargs)


class UserFactory(_ServiceFactory):
    """A practice user, created as the API creates one; `disabled=True` then disables it (the
    disable's own audit event, history row and Cognito work included)."""

    class Meta:
        model = User

    class Params:
        provider = factory.Trait(
            roles=["provider"],
            provider_details=factory.LazyFunction(provider_details),
        )
        disabled = factory.Trait(status=User.Status.DISABLED)

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"person{n}@practice.example")
    given_name = "Ben"
    family_name = "Smith"
    roles = None  # the service's default: member
    provider_details = None
    status = User.Status.ACTIVE
    disable_reason = None
    actor = SETUP

    @classmethod
    def _create(cls, model_class, *, actor, status, disable_reason, roles, **kwargs):
        from accounts import services

        user = services.user_create(actor=actor, roles=None if roles is None else list(roles), **kwargs)
        if status == User.Status.DISABLED:
            user = services.user_disable(user=user, actor=actor, reason=disable_reason)
        return user


class StaffFactory(_ServiceFactory):
    """Platform staff. By default a superuser made by the manager, the `createsuperuser` path (the
    bootstrap account, made before anyone could be its actor). With `permissions` (codenames) it is
    staff who is no superuser, saved by `actor` (a superuser) through accounts.staff, which audits
    the privileges."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"staff{n}@platform.example")
    given_name = "Sam"
    family_name = "Staff"
    password = "correct horse battery"
    permissions = None
    actor = None

    @classmethod
    def _create(cls, model_class, *, email, password, permissions, actor, **kwargs):
        if permissions is None:
            return model_class.objects.create_superuser(email=email, password=password, **kwargs)
        if actor is None:
            raise TypeError("StaffFactory(permissions=...) needs actor=, the superuser who grants them.")
        from django.contrib.auth.models import Permission

        from accounts.staff import staff_member_save

        member = model_class(email=email.strip().lower(), is_staff=True, roles=["member"], **kwargs)
        member.set_password(password)
        found = list(Permission.objects.filter(codename__in=permissions))
        missing = set(permissions) - {permission.codename for permission in found}
        if missing:
            raise ValueError(f"no such permissions: {sorted(missing)}")
        return staff_member_save(actor=actor, member=member, permissions=found)
