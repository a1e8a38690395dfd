"""The staff console for practice users, platform staff, provider details and the Cognito queue.

Every change to a practice user goes through accounts.services with the staff member as the actor,
so the admin writes the same audit events, history and Cognito work as the API. Nothing here saves
a User or ProviderDetails directly.
"""

from contextvars import ContextVar

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, PasswordChangeForm
from django.contrib.auth.models import Group
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.html import escape, format_html
from simple_history.admin import SimpleHistoryAdmin

from accounts import roles as role_names
from accounts import services, staff
from accounts.cognito import sync
from accounts.forms import (
    DisableForm,
    PracticeUserAdminForm,
    RolesForm,
    StaffUserChangeForm,
    StaffUserCreationForm,
    provider_form_field_name,
)
from accounts.models import (
    PROVIDER_FIELDS,
    CognitoSync,
    ProviderDetails,
    StaffUser,
    User,
    access_not_expired_q,
    has_role,
    provider_details_complete_q,
    provider_details_missing,
    provider_details_prescribable_q,
)
from audit.context import Actor
from audit.models import AuditEvent
from core.admin_mixins import HistoryWithoutRevertMixin, ReadOnlyAdminMixin
from core.errors import ApplicationError
from organizations.models import Organization

# --- queries the filters and the index share ------------------------------------------------------


def complete_provider_details():
    """ProviderDetails.is_complete, as a query."""
    return ProviderDetails.objects.filter(provider_details_complete_q())


def with_provider_role(queryset):
    return queryset.filter(has_role(role_names.PROVIDER))


def providers_with_incomplete_details(queryset):
    active_providers = with_provider_role(queryset.filter(status=User.Status.ACTIVE))
    return active_providers.exclude(pk__in=complete_provider_details().values("user_id"))


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return [(role, role) for role in sorted(role_names.ALL_ROLES)]

    def queryset(self, request, queryset):
        if self.value() in role_names.ALL_ROLES:
            return queryset.filter(has_role(self.value()))
        return queryset


class CognitoStateFilter(admin.ChoicesFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "Cognito sync"


class PracticeOrganizationFilter(admin.RelatedOnlyFieldListFilter):
    include_empty_choice = False  # only platform staff have no organization, and they aren't listed here


class CanPrescribeFilter(admin.SimpleListFilter):
    title = "can prescribe"
    parameter_name = "can_prescribe"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Yes"),
            ("no", "No"),
            ("incomplete", "Provider role, details incomplete"),
        ]

    def queryset(self, request, queryset):
        prescribers = with_provider_role(queryset.filter(access_not_expired_q(), status=User.Status.ACTIVE)).filter(
            pk__in=ProviderDetails.objects.filter(provider_details_prescribable_q()).values("user_id")
        )
        if self.value() == "yes":
            return prescribers
        if self.value() == "no":
            return queryset.exclude(pk__in=prescribers.values("pk"))
        if self.value() == "incomplete":
            return providers_with_incomplete_details(queryset)
        return queryset


def missing_provider_fields(user) -> list[str]:
    """The labels of the provider details a prescriber needs and this user's lack. Without details
    yet, the name is not among them: the services copy the user's name into new details."""
    details = getattr(user, "provider_details", None)
    if details is not None:
        def get(field):
            return getattr(details, field)
    else:
        def get(field):
            return getattr(user, field) if field in ("given_name", "family_name") else None
    return [str(ProviderDetails._meta.get_field(field).verbose_name) for field in provider_details_missing(get)]


def cannot_prescribe_because(user) -> str:
    if not user.is_active:
        return "Can't prescribe: the user is disabled."
    if user.access_expired:
        return "Can't prescribe: access expired (the worker disables the user within a minute)."
    if not user.has_provider_role:
        return "Can't prescribe: no provider role."
    missing = missing_provider_fields(user)
    details = getattr(user, "provider_details", None)
    if details is None:
        return f"Can't prescribe: no provider details yet (needs {', '.join(missing)})."
    if missing:
        return f"Can't prescribe: provider details lack {', '.join(missing)}."
    because = f" ({details.verification_message})" if details.verification_message else ""
    return (
        f"Can't prescribe: the HI Service has not verified these details: "
        f"{details.get_verification_status_display()}{because}."
    )


def _boolean_icon(value: bool, title: str):
    """The admin's own yes/no icon (as boolean=True draws it), with a tooltip."""
    name = "yes" if value else "no"
    return format_html('<img src="{}" alt="{}" title="{}">', static(f"admin/img/icon-{name}.svg"), value, title)


def _actor(request) -> Actor:
    return Actor.staff(request.user)


# --- practice users -----------------------------------------------------------------------------------


@admin.register(User)
class UserAdmin(HistoryWithoutRevertMixin, SimpleHistoryAdmin):
    revert_refusal = "History can't be reverted here: change the user through the form."
    form = PracticeUserAdminForm
    change_form_template = "admin/accounts/user/change_form.html"
    list_display = (
        "email",
        "full_name",
        "organization",
        "roles_display",
        "status",
        "can_prescribe_display",
        "cognito_display",
    )
    list_select_related = ("organization", "provider_details", "cognito_sync")
    list_filter = (
        ("organization", PracticeOrganizationFilter),
        RoleFilter,
        "status",
        CanPrescribeFilter,
        ("cognito_sync__state", CognitoStateFilter),
    )
    search_fields = (
        "given_name",
        "family_name",
        "email",
        "=partner_user_id",
        "=provider_details__hpii_number",
    )
    search_help_text = "Name, email, partner user id (exact) or HPI-I (exact)."
    actions = ["set_roles_action", "disable_action", "enable_action"]
    history_list_display = ["status", "roles"]
    save_as = False
    list_per_page = 50

    _user_fields = ("email", "given_name", "family_name", "title", "phone", "partner_user_id", "access_expires_at")
    _provider_fields = tuple(provider_form_field_name(name) for name in PROVIDER_FIELDS)
    _state_fields = (
        "roles_display", "status", "disabled_at", "disable_reason", "can_prescribe_display", "cognito_display"
    )
    _record_fields = ("id", "organization", "created_at", "updated_at")

    def get_queryset(self, request):
        # Practice users only; platform staff have their own page (StaffUserAdmin).
        return super().get_queryset(request).filter(organization__isnull=False)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ("organization", *self._user_fields, "roles")}),
                (
                    "Provider details",
                    {
                        "fields": self._provider_fields,
                        "description": "Required when the roles include provider. The provider's name and "
                        "phone default to the user's.",
                    },
                ),
            ]
        provider = {"fields": self._provider_fields}
        if obj.is_active and obj.has_provider_role and not obj.can_prescribe:
            missing = missing_provider_fields(obj)
            provider["description"] = escape(
                f"Needed to prescribe, still missing: {', '.join(missing)}."
                if missing
                else cannot_prescribe_because(obj)
            )
        return [
            (None, {"fields": self._user_fields}),
            ("Access", {"fields": self._state_fields}),
            ("Provider details", provider),
            ("Record", {"fields": self._record_fields, "classes": ["collapse"]}),
        ]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if "organization" not in initial:
            # With a single practice there is nothing to choose: preselect it.
            active = list(Organization.objects.filter(is_active=True).values_list("pk", flat=True)[:2])
            if len(active) == 1:
                initial["organization"] = active[0]
        return initial

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        readonly = [*self._state_fields, *self._record_fields]
        if obj.is_disabled:
            # The services refuse changes to a disabled user; show it all read-only instead.
            readonly += [*self._user_fields, *self._provider_fields]
        return readonly

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # A fresh class per request: the actor and the read-only names travel with it.
        form.actor = _actor(request)
        form.readonly_names = frozenset(self.get_readonly_fields(request, obj))
        return form

    # The form has already written through the service when it validated (see PracticeUserAdminForm).
    def save_form(self, request, form, change):
        return form.instance

    def save_model(self, request, obj, form, change):
        pass

    def save_related(self, request, form, formsets, change):
        pass

    def has_delete_permission(self, request, obj=None):
        return False  # users are disabled, never deleted

    # --- columns and read-only fields ---

    @admin.display(description="name", ordering="family_name")
    def full_name(self, obj):
        return obj.get_full_name()

    @admin.display(description="roles")
    def roles_display(self, obj):
        return ", ".join(obj.roles)

    @admin.display(description="disable reason")
    def disable_reason(self, obj):
        """The reason given when the user was last disabled (API body, this admin's page, disable_user)."""
        if not obj.is_disabled:
            return "-"
        event = (
            AuditEvent.objects.filter(user_id=obj.pk, action=AuditEvent.Action.USER_DISABLED)
            .order_by("-occurred_at", "-id")
            .values_list("changes", flat=True)
            .first()
        )
        reason = ((event or {}).get("reason") or {}).get("to")
        return reason or "-"

    @admin.display(description="can prescribe")
    def can_prescribe_display(self, obj):
        """The yes/no icon, and for an active provider who can't prescribe, what is missing."""
        if obj.can_prescribe:
            return _boolean_icon(True, "Can prescribe")
        why = cannot_prescribe_because(obj)
        if not (obj.is_active and obj.has_provider_role):
            return _boolean_icon(False, why)
        has_details = getattr(obj, "provider_details", None) is not None
        return format_html(
            '{} <span class="missing-provider-fields" title="{}">{}</span>',
            _boolean_icon(False, why),
            why,
            f"missing: {', '.join(missing_provider_fields(obj))}" if has_details else "no provider details",
        )

    @admin.display(description="Cognito", ordering="cognito_sync__state")
    def cognito_display(self, obj):
        sync_row = getattr(obj, "cognito_sync", None)
        return sync_row.state if sync_row is not None else "-"

    # --- pages and actions that call the services ---

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/roles/", self.admin_site.admin_view(self.roles_view), name=f"{prefix}_roles"),
            path("<path:object_id>/disable/", self.admin_site.admin_view(self.disable_view), name=f"{prefix}_disable"),
            path("<path:object_id>/enable/", self.admin_site.admin_view(self.enable_view), name=f"{prefix}_enable"),
        ] + super().get_urls()

    def _user_for_change(self, request, object_id) -> User:
        user = get_object_or_404(self.get_queryset(request).select_related("provider_details"), pk=object_id)
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        return user

    def _change_url(self, user) -> str:
        return reverse("admin:accounts_user_change", args=[user.pk])

    def _page(self, request, template, users, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "users": users,
                "title": context.pop("title"),
                **context,
            },
        )

    def _set_roles(self, request, users, *, action=None):
        """Shared by the per-user page and the bulk action. Returns a response, or None when done."""
        initial_roles = users[0].roles if len(users) == 1 else [role_names.MEMBER]
        form = RolesForm(request.POST if "apply" in request.POST else None, initial={"roles": initial_roles})
        if form.is_bound and form.is_valid():
            done, refused = 0, []
            for user in users:
                try:
                    services.user_roles_set(user=user, actor=_actor(request), roles=form.cleaned_data["roles"])
                    done += 1
                except ApplicationError as error:
                    if error.code == "invalid_role":
                        form.add_service_error(error)  # the same for every user: show it on the form
                        break
                    refused.append(f"{user.email}: {error.message}")
            if not form.errors:
                if done:
                    self.message_user(request, f"Roles set for {done} user(s).", messages.SUCCESS)
                for line in refused:
                    self.message_user(request, line, messages.ERROR)
                return None
        return self._page(
            request,
            "admin/accounts/user/set_roles.html",
            users,
            title="Set roles",
            form=form,
            action=action,
        )

    def _disable(self, request, users, *, action=None):
        form = DisableForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for user in users:
                if user.is_disabled:
                    continue
                services.user_disable(user=user, actor=_actor(request), reason=form.cleaned_data["reason"] or None)
                done += 1
            self.message_user(request, f"Disabled {done} user(s).", messages.SUCCESS)
            return None
        return self._page(
            request,
            "admin/accounts/user/disable_confirmation.html",
            users,
            title="Disable users" if len(users) > 1 else "Disable user",
            action=action,
            form=form,
            already_disabled=[u for u in users if u.is_disabled],
        )

    def _enable(self, request, users, *, action=None):
        if "confirm" in request.POST:
            done = 0
            for user in users:
                if user.is_active:
                    continue
                services.user_enable(user=user, actor=_actor(request))
                done += 1
            self.message_user(request, f"Re-enabled {done} user(s). Their roles are member only.", messages.SUCCESS)
            return None
        return self._page(
            request,
            "admin/accounts/user/enable_confirmation.html",
            users,
            title="Re-enable users" if len(users) > 1 else "Re-enable user",
            action=action,
            already_active=[u for u in users if u.is_active],
        )

    def roles_view(self, request, object_id):
        user = self._user_for_change(request, object_id)
        if user.is_disabled:
            self.message_user(
                request, "A disabled user's roles can't be changed. Re-enable them first.", messages.ERROR
            )
            return HttpResponseRedirect(self._change_url(user))
        return self._set_roles(request, [user]) or HttpResponseRedirect(self._change_url(user))

    def disable_view(self, request, object_id):
        user = self._user_for_change(request, object_id)
        return self._disable(request, [user]) or HttpResponseRedirect(self._change_url(user))

    def enable_view(self, request, object_id):
        user = self._user_for_change(request, object_id)
        return self._enable(request, [user]) or HttpResponseRedirect(self._change_url(user))

    @admin.action(description="Set roles of selected users…", permissions=["change"])
    def set_roles_action(self, request, queryset):
        return self._set_roles(request, list(queryset), action="set_roles_action")

    @admin.action(description="Disable selected users…", permissions=["change"])
    def disable_action(self, request, queryset):
        return self._disable(request, list(queryset), action="disable_action")

    @admin.action(description="Re-enable selected users…", permissions=["change"])
    def enable_action(self, request, queryset):
        return self._enable(request, list(queryset), action="enable_action")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_change_user"] = self.has_change_permission(request, obj)
            if obj.is_disabled:
                context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
            context["audit_url"] = reverse("admin:audit_auditevent_changelist") + f"?user={obj.pk}"
            context["provider_history_url"] = (
                reverse("admin:accounts_providerdetails_history", args=[obj.pk])
                if ProviderDetails.objects.filter(pk=obj.pk).exists()
                else None
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


def _readonly_provider_field(name):
    def display(self, obj):
        details = getattr(obj, "provider_details", None)
        value = getattr(details, name, None) if details is not None else None
        return value if value not in (None, "") else "-"

    field = ProviderDetails._meta.get_field(name)
    display.short_description = field.verbose_name
    return display


# Read-only pages (disabled users, staff with view permission only) show the provider fields too.
for _name in PROVIDER_FIELDS:
    setattr(UserAdmin, provider_form_field_name(_name), _readonly_provider_field(_name))


@admin.register(ProviderDetails)
class ProviderDetailsAdmin(ReadOnlyAdminMixin, HistoryWithoutRevertMixin, SimpleHistoryAdmin):
    """Read-only: provider details change on the user's page. Here for the list and the history."""

    list_display = (
        "user", "organization", "hpii_number", "prescriber_type", "is_complete_display",
        "verification_status", "verification_checked_at", "updated_at",
    )
    list_filter = ("verification_status",)
    list_select_related = ("user", "organization")
    search_fields = ("=hpii_number", "user__email", "family_name")
    history_list_display = ["hpii_number", "prescriber_type", "prescriber_number", "verification_status"]

    @admin.display(description="complete", boolean=True)
    def is_complete_display(self, obj):
        return obj.is_complete


# --- platform staff ----------------------------------------------------------------------------------


# Django's password view builds its form from (member, POST) only; the acting superuser reaches the
# form's save() through this, set for the length of one request by StaffUserAdmin.
_password_actor: ContextVar = ContextVar("staff_password_actor")


class StaffPasswordForm(AdminPasswordChangeForm):
    """Saved by staff_password_set, which records the change in the same transaction."""

    def save(self, commit=True):
        password = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        return staff.staff_password_set(actor=_password_actor.get(), member=self.user, password=password)


class OwnPasswordChangeForm(PasswordChangeForm):
    """The signed-in staff member's own password (the old one asked), saved by
    staff_own_password_change, which records it."""

    required_css_class = "required"  # as the admin's own form

    def save(self, commit=True):
        return staff.staff_own_password_change(member=self.user, password=self.cleaned_data["new_password1"])


def own_password_change(request):
    """The admin's "Change password" page (config/urls.py routes /admin/password_change/ here): the
    admin's own view and template, with a form whose save is recorded."""
    request.current_app = admin.site.name
    view = PasswordChangeView.as_view(
        form_class=OwnPasswordChangeForm,
        success_url=reverse("admin:password_change_done", current_app=admin.site.name),
        extra_context=admin.site.each_context(request),
    )
    return view(request)


@admin.register(StaffUser)
class StaffUserAdmin(DjangoUserAdmin):
    """Platform staff sign in here; they belong to no organization and have no Cognito account.

    Managed by superusers only (accounts/staff.py): anyone else may view what their permissions
    allow and change their own name, nothing more, whatever permissions they hold. Every save goes
    through staff_member_save, which records privilege changes."""

    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    change_password_form = StaffPasswordForm
    list_display = ("email", "given_name", "family_name", "is_superuser", "status", "last_login")
    list_filter = ("is_superuser", "status", "groups")
    search_fields = ("email", "given_name", "family_name")
    ordering = ("email",)
    filter_horizontal = ("groups", "user_permissions")
    readonly_fields = ("last_login", "created_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Name", {"fields": ("given_name", "family_name")}),
        ("Access", {"fields": ("status", "is_superuser", "groups", "user_permissions")}),
        ("Record", {"fields": ("last_login", "created_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "given_name", "family_name", "password1", "password2")}),
    )
    # What a staff member who is not a superuser sees read-only on their own page. Not "password":
    # the form's own read-only password field shows a summary; the admin's would show the hash.
    _managed_only_fields = ("email", "status", "is_superuser", "groups", "user_permissions")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(organization__isnull=True, is_staff=True)

    def get_readonly_fields(self, request, obj=None):
        if staff.may_manage_staff(request.user):
            return self.readonly_fields
        return (*self.readonly_fields, *self._managed_only_fields)

    def has_add_permission(self, request):
        return staff.may_manage_staff(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        if staff.may_manage_staff(request.user):
            return super().has_change_permission(request, obj)
        # Their own name only: no bulk edits or actions on the list, read-only pages of others.
        return (
            obj is not None
            and staff.may_edit_own_name(request.user, obj)
            and super().has_change_permission(request, obj)
        )

    def has_delete_permission(self, request, obj=None):
        return False  # set the status to disabled instead; history keeps pointing at them

    def user_change_password(self, request, id, form_url=""):
        # No old password is asked here, so it is for superusers only, their own included.
        staff.ensure_may_set_password(actor=request.user)
        token = _password_actor.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)

    def save_model(self, request, obj, form, change):
        pass  # saved with its groups and permissions in save_related, in one service call

    def save_related(self, request, form, formsets, change):
        # Only the m2m fields the form edits are passed; read-only ones are left as they are.
        staff.staff_member_save(
            actor=request.user,
            member=form.instance,
            groups=form.cleaned_data["groups"] if "groups" in form.fields else None,
            permissions=form.cleaned_data["user_permissions"] if "user_permissions" in form.fields else None,
        )


# --- groups: only superusers change them ----------------------------------------------------------------


admin.site.unregister(Group)


@admin.register(Group)
class StaffGroupAdmin(DjangoGroupAdmin):
    """A group's permissions are every member's privileges: superusers only, each change audited."""

    def has_add_permission(self, request):
        return staff.may_manage_staff(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return staff.may_manage_staff(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return staff.may_manage_staff(request.user) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        pass  # saved with its permissions in save_related, in one service call

    def save_related(self, request, form, formsets, change):
        staff.group_save(actor=request.user, group=form.instance, permissions=form.cleaned_data["permissions"])

    def delete_model(self, request, obj):
        staff.group_delete(actor=request.user, group=obj)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            staff.group_delete(actor=request.user, group=group)


# --- the Cognito queue -----------------------------------------------------------------------------------


@admin.register(CognitoSync)
class CognitoSyncAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user_link", "organization", "state", "attempts", "short_error", "next_attempt", "updated_at")
    list_select_related = ("user__organization",)
    list_filter = ("state",)
    search_fields = ("user__email", "=user__id")
    ordering = ("state", "-updated_at")
    actions = ["retry_action"]
    readonly_fields = (
        "user",
        "state",
        "attempts",
        "last_error",
        "desired",
        "desired_version",
        "synced_version",
        "next_attempt",
        "claimed_until",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    @admin.display(description="user", ordering="user__email")
    def user_link(self, obj):
        return _user_link(obj.user)

    @admin.display(description="organization", ordering="user__organization__name")
    def organization(self, obj):
        return obj.user.organization

    @admin.display(description="next attempt at", ordering="next_attempt_at")
    def next_attempt(self, obj):
        # Only a pending task has a next attempt; a synced or failed one waits for nothing.
        return obj.next_attempt_at if obj.state == CognitoSync.State.PENDING else "—"

    @admin.display(description="last error")
    def short_error(self, obj):
        return obj.last_error[:120] + ("…" if len(obj.last_error) > 120 else "")

    def has_retry_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Retry selected failed tasks", permissions=["retry"])
    def retry_action(self, request, queryset):
        count = sync.retry(queryset)
        self.message_user(
            request,
            f"{count} failed task(s) queued again; the sync worker applies them on its next pass."
            if count
            else "None of the selected tasks had failed; nothing to retry.",
            messages.SUCCESS if count else messages.WARNING,
        )


def _user_link(user) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user.email)

