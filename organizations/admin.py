"""Organizations and their API clients in the admin. New organizations and clients are made by
organizations.services, like the operator commands make them; a new client's secret is shown once."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from oauth2_provider import models as oauth2_models
from simple_history.admin import SimpleHistoryAdmin

from organizations.models import ApiClient, Organization
from organizations.services import api_client_create, api_client_revoke, organization_create


def _adopt(target, created) -> None:
    """The admin keeps using the instance its form built: point it at the row the service made."""
    for field in type(created)._meta.concrete_fields:
        setattr(target, field.attname, getattr(created, field.attname))
    target._state.adding = False
    target._state.db = created._state.db


class OrganizationUsersInline(admin.TabularInline):
    """A read-only summary; users are changed on their own page (through the services)."""

    # Looked up, not imported: organizations sits below accounts in the import order.
    model = get_user_model()
    fk_name = "organization"
    fields = ("user_link", "full_name", "roles_display", "status")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name = "user"
    verbose_name_plural = "users"
    ordering = ("family_name", "given_name")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="email")
    def user_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[obj.pk]), obj.email)

    @admin.display(description="name")
    def full_name(self, obj):
        return obj.get_full_name()

    @admin.display(description="roles")
    def roles_display(self, obj):
        return ", ".join(obj.roles)


class ApiClientInline(admin.TabularInline):
    model = ApiClient
    fields = ("client_link", "client_id", "allowed_scopes", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("application")

    @admin.display(description="name")
    def client_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:organizations_apiclient_change", args=[obj.pk]), obj.name
        )

    @admin.display(description="client id")
    def client_id(self, obj):
        return obj.application.client_id


@admin.register(Organization)
class OrganizationAdmin(SimpleHistoryAdmin):
    list_display = ("name", "hpio_number", "is_active", "user_count", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "=hpio_number")
    readonly_fields = ("id", "links", "created_at", "updated_at")
    inlines = [OrganizationUsersInline, ApiClientInline]
    save_as = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(user_count=Count("users"))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "hpio_number")
        return ("name", "hpio_number", "is_active", "links", "id", "created_at", "updated_at")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description="users", ordering="user_count")
    def user_count(self, obj):
        return obj.user_count

    @admin.display(description="manage")
    def links(self, obj):
        users = reverse("admin:accounts_user_changelist") + f"?organization__id__exact={obj.pk}"
        add_client = reverse("admin:organizations_apiclient_add") + f"?organization={obj.pk}"
        return format_html(
            '<a href="{}">All users of this organization</a> · <a href="{}" id="add-api-client-link">'
            "Add an API client</a>",
            users,
            add_client,
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # the form ran full_clean (HPI-O checked)
        else:
            _adopt(obj, organization_create(name=obj.name, hpio_number=obj.hpio_number))

    def has_delete_permission(self, request, obj=None):
        return False  # users, clients and the audit trail point at it; set it inactive instead

    def revert_disabled(self, request, obj=None):
        return True


class ApiClientCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {label}") for scope, label in settings.OAUTH2_PROVIDER["SCOPES"].items()],
        widget=forms.CheckboxSelectMultiple,
        help_text="What the practice software may do with its tokens.",
    )

    class Meta:
        model = ApiClient
        fields = ("organization", "name")


@admin.register(ApiClient)
class ApiClientAdmin(SimpleHistoryAdmin):
    list_display = ("name", "organization", "client_id", "allowed_scopes", "created_at", "revoked_at")
    list_select_related = ("organization", "application")
    list_filter = (("organization", admin.RelatedOnlyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "organization__name", "=application__client_id")
    actions = ["revoke_action"]
    save_as = False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiClientCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("organization", "name", "scopes")
        return ("name", "organization", "client_id", "allowed_scopes", "created_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "organization", "client_id", "allowed_scopes", "created_at", "revoked_at")

    @admin.display(description="client id")
    def client_id(self, obj):
        return obj.application.client_id

    def save_model(self, request, obj, form, change):
        if change:
            return  # clients are immutable once made; revoke and create a new one instead
        # The form offers only the configured scopes and requires one, so the service's scope check passes.
        api_client, secret = api_client_create(
            organization=form.cleaned_data["organization"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
        )
        _adopt(obj, api_client)
        obj.application = api_client.application
        # Shown on the next page only; never stored in the session or a message cookie.
        request._api_client_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_api_client_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/organizations/apiclient/secret.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "API client created",
                "api_client": obj,
                "client_id": obj.application.client_id,
                "client_secret": secret,
                "change_url": reverse("admin:organizations_apiclient_change", args=[obj.pk]),
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is not None:
            extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    def revert_disabled(self, request, obj=None):
        return True

    @admin.action(description="Revoke selected API clients", permissions=["change"])
    def revoke_action(self, request, queryset):
        revoked = 0
        for api_client in queryset.filter(revoked_at__isnull=True):
            api_client_revoke(api_client=api_client)
            revoked += 1
        self.message_user(
            request,
            f"Revoked {revoked} API client(s): they get no new tokens and their tokens stop working now.",
            messages.SUCCESS,
        )


# django-oauth-toolkit's own pages would let staff make an OAuth application that belongs to no
# organization, or read token metadata; API clients are managed above, through the services.
for _model in (
    oauth2_models.get_application_model(),
    oauth2_models.get_access_token_model(),
    oauth2_models.get_refresh_token_model(),
    oauth2_models.get_id_token_model(),
    oauth2_models.get_grant_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
