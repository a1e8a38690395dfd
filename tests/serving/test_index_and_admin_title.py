"""The index page links to the docs, the admin and the health check; the admin carries the product's
name, not Django's."""

import pytest


@pytest.mark.django_db
def test_the_index_links_to_the_docs_the_admin_and_health(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for link in ('href="/v1/docs"', 'href="/admin/"', 'href="/healthz"'):
        assert link in page
    assert "User management" in page


@pytest.mark.django_db
def test_the_admin_carries_the_product_name_not_djangos(client):
    page = client.get("/admin/login/").content.decode()
    assert "User management" in page
    assert "Django administration" not in page
