from django.urls import path, re_path

from scim import views

urlpatterns = [
    path("ServiceProviderConfig", views.ServiceProviderConfigView.as_view(), name="scim-service-provider-config"),
    path("Schemas", views.SchemasView.as_view(), name="scim-schemas"),
    path("Schemas/<str:schema_id>", views.SchemasView.as_view(), name="scim-schema"),
    path("ResourceTypes", views.ResourceTypesView.as_view(), name="scim-resource-types"),
    path("ResourceTypes/<str:type_id>", views.ResourceTypesView.as_view(), name="scim-resource-type"),
    path("Users", views.UsersView.as_view(), name="scim-users"),
    path("Users/<str:user_id>", views.UserView.as_view(), name="scim-user"),
    path("Groups", views.GroupsView.as_view(), name="scim-groups"),
    path("Groups/<str:group_id>", views.GroupView.as_view(), name="scim-group"),
    # Anything else under /scim/v2 is a SCIM 404 (for a valid token), never an HTML page.
    re_path(r"^.*$", views.NotFoundView.as_view()),
]
