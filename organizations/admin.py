"""Organizations and their API clients in the admin.

Every change goes through organizations.services with the staff member as the actor, like the
operator commands: create and edit, deactivate and activate (actions with a reason and a
confirmation page; the form never flips `is_active`), and API clients' create, rename, scopes and
revoke. A new client's secret is shown once.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from oauth2_provider import models as oauth2_models
from simple_history.admin import SimpleHistoryAdmin

from audit.changes import REASON_MAX_LENGTH
from audit.context import Actor
from core.admin_mixins import HistoryWithoutRevertMixin, ReadOnlyAdminMixin
from core.errors import ApplicationError
from organizations import services
from organizations.models import ApiClient, Organization

_SCOPE_CHOICES = [(scope, f"{scope}: {label}") for scope, label in settings.OAUTH2_PROVIDER["SCOPES"].items()]


def _adopt(target, created) -> None:
    """The admin keeps using the instance its form built: point it at the row the service made."""
    for field in type(created)._meta.concrete_fields:
        setattr(target, field.attname, getattr(created, field.attname))
    target._state.adding = False
    target._state.db = created._state.db


class ApiClientInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApiClient
    fields = ("client_link", "client_id", "allowed_scopes", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

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


def _actor(request) -> Actor:
    return Actor.staff(request.user)


class OrganizationReasonForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the audit event (e.g. the ticket, or why the practice leaves).",
    )


@admin.register(Organization)
class OrganizationAdmin(HistoryWithoutRevertMixin, SimpleHistoryAdmin):
    revert_refusal = "History can't be reverted here: change the organization through the form."
    change_form_template = "admin/organizations/organization/change_form.html"
    list_display = ("name", "hpio_number", "is_active", "user_count", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "=hpio_number")
    readonly_fields = ("id", "is_active", "links", "created_at", "updated_at")
    # No users inline: after an import an organization has thousands; the link below opens its
    # filtered user list (searchable, paginated) instead.
    inlines = [ApiClientInline]
    actions = ["deactivate_action", "activate_action"]
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
        count = obj.users.count()
        return format_html(
            '<a href="{}" id="organization-users-link">{} user{} of this organization</a> · '
            '<a href="{}" id="add-api-client-link">Add an API client</a>',
            users,
            f"{count:,}",
            "" if count == 1 else "s",
            add_client,
        )

    def save_model(self, request, obj, form, change):
        # The form ran full_clean (HPI-O checked); the service checks again under its lock.
        if change:
            fields = {
                name: form.cleaned_data[name] for name in form.changed_data if name in services.ORGANIZATION_FIELDS
            }
            saved = services.organization_update(organization=obj, actor=_actor(request), **fields)
        else:
            saved = services.organization_create(actor=_actor(request), name=obj.name, hpio_number=obj.hpio_number)
        _adopt(obj, saved)

    def has_delete_permission(self, request, obj=None):
        return False  # users, clients and the audit trail point at it; deactivate it instead

    # --- deactivation and activation: confirmation pages that call the services ---

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        set_active = self.admin_site.admin_view(self.set_active_view)
        return [
            path("<path:object_id>/deactivate/", set_active, {"active": False}, name=f"{prefix}_deactivate"),
            path("<path:object_id>/activate/", set_active, {"active": True}, name=f"{prefix}_activate"),
        ] + super().get_urls()

    def _organization_for_change(self, request, object_id) -> Organization:
        try:
            organization = get_object_or_404(self.get_queryset(request), pk=object_id)
        except ValidationError as error:  # not a UUID
            raise Http404("No such organization.") from error
        if not self.has_change_permission(request, organization):
            raise PermissionDenied
        return organization

    def _change_url(self, organization) -> str:
        return reverse("admin:organizations_organization_change", args=[organization.pk])

    def _set_active(self, request, organizations, *, active: bool, action=None):
        """Shared by the per-organization pages and the bulk actions. Returns a response, or None when done."""
        form = OrganizationReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            service = services.organization_activate if active else services.organization_deactivate
            done = 0
            for organization in organizations:
                if organization.is_active == active:
                    continue
                try:
                    service(organization=organization, actor=_actor(request), reason=form.cleaned_data["reason"])
                except ApplicationError as error:
                    form.add_error("reason", error.message)
                    break
                done += 1
            if not form.errors:
                self.message_user(
                    request,
                    f"Activated {done} organization(s): their API clients work again, and their active users' "
                    "Cognito accounts are queued to be enabled."
                    if active
                    else f"Deactivated {done} organization(s): their API clients get 401, and their users' "
                    "Cognito accounts are queued to be disabled and signed out.",
                    messages.SUCCESS,
                )
                return None
        verb = "Activate" if active else "Deactivate"
        return TemplateResponse(
            request,
            f"admin/organizations/organization/{'activate' if active else 'deactivate'}_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "organizations": organizations,
                "title": f"{verb} organizations" if len(organizations) > 1 else f"{verb} organization",
                "form": form,
                "action": action,
                "unchanged": [o for o in organizations if o.is_active == active],
            },
        )

    def set_active_view(self, request, object_id, *, active: bool):
        """One organization's deactivate (active=False) or activate page."""
        organization = self._organization_for_change(request, object_id)
        return self._set_active(request, [organization], active=active) or HttpResponseRedirect(
            self._change_url(organization)
        )

    @admin.action(description="Deactivate selected organizations…", permissions=["change"])
    def deactivate_action(self, request, queryset):
        return self._set_active(request, list(queryset), active=False, action="deactivate_action")

    @admin.action(description="Activate selected organizations…", permissions=["change"])
    def activate_action(self, request, queryset):
        return self._set_active(request, list(queryset), active=True, action="activate_action")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_change_organization"] = self.has_change_permission(request, obj)
            context["audit_url"] = reverse("admin:audit_auditevent_changelist") + f"?organization__id__exact={obj.pk}"
        return super().render_change_form(request, context, add, change, form_url, obj)


class ApiClientForm(forms.ModelForm):
    """A new client (organization, name, scopes) or a live one's name and scopes: the admin's get_fields
    says which of the fields the page edits."""

    scopes = forms.MultipleChoiceField(
        choices=_SCOPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the practice software may do with its tokens.",
    )

    class Meta:
        model = ApiClient
        fields = ("organization", "name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["scopes"].initial = sorted(self.instance.scopes)
            self.fields["scopes"].help_text = "Narrowing them applies to the client's live tokens at once."


@admin.register(ApiClient)
class ApiClientAdmin(HistoryWithoutRevertMixin, SimpleHistoryAdmin):
    revert_refusal = "History can't be reverted here: change the client through the form."
    list_display = ("name", "organization", "client_id", "allowed_scopes", "created_at", "revoked_at")
    list_select_related = ("organization", "application")
    list_filter = (("organization", admin.RelatedOnlyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "organization__name", "=application__client_id")
    actions = ["revoke_action"]
    save_as = False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None or (not obj.is_revoked and self.has_change_permission(request, obj)):
            kwargs["form"] = ApiClientForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("organization", "name", "scopes")
        if obj.is_revoked or not self.has_change_permission(request, obj):
            return ("name", "organization", "client_id", "allowed_scopes", "created_at", "revoked_at")
        return ("name", "scopes", "organization", "client_id", "created_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.is_revoked:  # a revoked client is immutable; create a new one instead
            return ("name", "organization", "client_id", "allowed_scopes", "created_at", "revoked_at")
        return ("organization", "client_id", "allowed_scopes", "created_at", "revoked_at")

    @admin.display(description="client id")
    def client_id(self, obj):
        return obj.application.client_id

    def save_model(self, request, obj, form, change):
        if change:
            if obj.is_revoked:
                return
            saved = services.api_client_update(
                api_client=obj,
                actor=_actor(request),
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
            )
            _adopt(obj, saved)
            return
        # The form offers only the configured scopes and requires one, so the service's scope check passes.
        api_client, secret = services.api_client_create(
            organization=form.cleaned_data["organization"],
            actor=_actor(request),
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
            api_client = self.get_object(request, object_id)
            if api_client is not None and api_client.is_revoked:
                extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected API clients", permissions=["change"])
    def revoke_action(self, request, queryset):
        revoked = 0
        for api_client in queryset.filter(revoked_at__isnull=True):
            services.api_client_revoke(api_client=api_client, actor=_actor(request))
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
