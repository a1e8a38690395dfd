"""Query budgets: how many SQL statements each API request may run, authentication included.

The budgets do not depend on the page size, the number of roles, whether users have provider
details or how much history they have: a per-row (N+1) query anywhere breaks them.

Reads (measured 2 on PostgreSQL and SQLite):
    list a page of users   <= 4   measured 2: the token (+ application, API client, organization in
                                  the same query, compiled once: core/db.py) and the page (users
                                  LEFT JOIN provider details LEFT JOIN Cognito sync, keyset-paginated,
                                  no COUNT; on PostgreSQL each row's JSON is built by the query)
    get one user           <= 3   measured 2: the token, the user (same joins, compiled once)

Writes (measured with COGNITO_SYNC_INLINE on, i.e. what a request really runs; identical on
PostgreSQL and SQLite; BEGIN and COMMIT are logged as statements and counted, they are round trips):
    create provider  20   token 1; BEGIN/COMMIT 2; the organization's lock on the login name 1;
                          conflict checks 2 (email via the lower(email) unique index, partner id
                          and SCIM userNames in one; HPI-I); inserts 6 (user, its history row,
                          provider details, their history row, 2 audit events: user.created +
                          provider_details.updated); the enabled webhook endpoints, once per audit
                          event 2; Cognito outbox 2 (the organization's active flag, read fresh, and
                          the INSERT); the register check's task 1 (verification/queue.py); after
                          commit the inline sync 2 (the claim, an UPDATE ... RETURNING the claimed
                          row; the result, an UPDATE ... RETURNING whether the row ended synced: only
                          when a newer state arrived meanwhile does it claim again); re-read for the
                          response 1 (the sync moved cognito.status)
    update           16   token 1; fetch the user 1 (scoped 404); BEGIN/COMMIT 2; lock it (SELECT ...
                          FOR UPDATE) 1; the login-name lock 1 and the email conflict check 1 (an
                          e-mail change); UPDATE user + history row 2; audit event 1; webhook
                          endpoints 1; outbox 2 (active flag, UPDATE); inline sync 2; re-read 1
    roles            14   as update without the login-name lock and the email check
    disable          14   as roles
With matching webhook endpoints, two more a change (the event, its deliveries) and the user's row
for the payload. Recording the Cognito state reads the organization's active flag fresh: a request
that loaded the organization just before it was deactivated must not record the account as enabled
(accounts/cognito/sync.py record_desired_state). The login-name lock makes the conflict check also
cover the SCIM userNames, and SCIM takes the same lock (accounts.services.login_name_lock), so no two
users ever answer to one userName.
The writes' remaining fixed costs are deliberate: the lock re-reads the row the 404 check already
read (the lock must be taken inside the transaction), history and audit rows are the contract,
and the inline sync's claim and result under a claim token keep several workers from applying one
change twice.
"""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

LIST_BUDGET = 4
DETAIL_BUDGET = 3
WRITE_BUDGETS = {"create": 20, "update": 16, "roles": 14, "disable": 14}

PROVIDER = {
    "date_of_birth": "1975-12-25",
    "sex": "M",
    "prescriber_type": "M",
    "prescriber_number": "1234567",
    "qualifications": "MD",
}
HPIIS = ["8003614900000009", "8003614900000017", "8003614900029560"]


def _write_budget(action):
    return WRITE_BUDGETS[action]


@pytest.fixture
def populated(api, users_url):
    """Users of every shape: with and without provider details, several roles, history rows
    (several updates each), one disabled. Returns their ids."""
    ids = []
    for index in range(6):
        body = {"given_name": f"Given{index}", "family_name": "Smith", "email": f"person{index}@example.com"}
        if index < 3:
            body.update(PROVIDER, access_roles=["provider"], hpii_number=HPIIS[index])
        response = api.post(users_url, body, format="json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    user_id = ids[3]
    for round_ in range(3):  # history rows and audit events must not cost queries on reads
        assert api.put(f"{users_url}/{user_id}", {"title": f"Dr{round_}"}, format="json").status_code == 200
    roles = ["admin", "receptionist", "rx_reader"]
    assert api.put(f"{users_url}/{user_id}/roles", {"access_roles": roles}, format="json").status_code == 200
    assert api.put(f"{users_url}/{ids[4]}/disable").status_code == 200
    # Details without the provider role (kept when the role goes).
    assert api.put(f"{users_url}/{ids[0]}/roles", {"access_roles": ["member"]}, format="json").status_code == 200
    return ids


def _no_count(queries):
    return not any("COUNT(" in query["sql"].upper() for query in queries)


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_a_page_of_users_costs_the_same_whatever_its_size(api, users_url, populated, limit, django_assert_max_num_queries):
    with django_assert_max_num_queries(LIST_BUDGET) as queries:
        response = api.get(f"{users_url}?limit={limit}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(limit, len(populated))
    assert _no_count(queries.captured_queries)


def test_following_the_cursor_costs_the_same_and_never_counts(api, users_url, populated, django_assert_max_num_queries):
    url, seen = f"{users_url}?limit=2", []
    while url:
        with django_assert_max_num_queries(LIST_BUDGET) as queries:
            response = api.get(url)
        assert response.status_code == 200
        assert _no_count(queries.captured_queries)
        seen += [user["id"] for user in response.json()["results"]]
        url = response.json()["next"]
    assert sorted(seen) == sorted(populated)


@pytest.mark.parametrize(
    "query",
    ["role=provider", "role=admin", "status=disabled", "email=PERSON3@example.com", "partner_user_id=x", "search=giv"],
)
def test_filtered_pages_stay_within_the_budget(api, users_url, populated, query, django_assert_max_num_queries):
    with django_assert_max_num_queries(LIST_BUDGET) as queries:
        response = api.get(f"{users_url}?{query}")
    assert response.status_code == 200
    assert _no_count(queries.captured_queries)


def test_the_email_filter_still_matches_case_insensitively(api, users_url, populated):
    response = api.get(f"{users_url}?email=PERSON3@Example.com")
    assert [user["id"] for user in response.json()["results"]] == [populated[3]]


def test_the_role_filter_matches_what_the_partial_indexes_cover(api, users_url, populated):
    response = api.get(f"{users_url}?role=provider&limit=100")
    assert sorted(user["id"] for user in response.json()["results"]) == sorted(populated[1:3])


def test_one_user_whatever_its_details_and_history(api, users_url, populated, django_assert_max_num_queries):
    for user_id in populated:
        with django_assert_max_num_queries(DETAIL_BUDGET):
            response = api.get(f"{users_url}/{user_id}")
        assert response.status_code == 200


def test_the_rows_render_what_the_models_say(api, users_url, populated):
    """The resource renders from values() rows, not model instances: it must agree with the models'
    own rules (User.can_prescribe, ProviderDetails fields), and the list with the detail."""
    from accounts.models import User

    listed = api.get(f"{users_url}?limit=100").json()["results"]
    assert len(listed) == len(populated)
    shapes = set()
    for user in listed:
        assert user == api.get(f"{users_url}/{user['id']}").json()
        model = User.objects.select_related("provider_details").get(pk=user["id"])
        assert user["can_prescribe"] is model.can_prescribe
        assert user["access_roles"] == sorted(set(model.roles))
        details = getattr(model, "provider_details", None)
        if details is None:
            assert user["provider_details"] is None
        else:
            assert user["provider_details"]["hpii_number"] == details.hpii_number
            assert user["provider_details"]["prescriber_number"] == details.prescriber_number
            assert user["provider_details"]["date_of_birth"] == (
                details.date_of_birth.isoformat() if details.date_of_birth else None
            )
        shapes.add((user["provider_details"] is None, user["can_prescribe"], user["status"]))
    # The comparison covered users with and without details, prescribers and a disabled user.
    assert {(False, True, "active"), (False, False, "active"), (True, False, "active")} <= shapes
    assert any(status == "disabled" for _, _, status in shapes)


def test_write_budgets(api, users_url, populated, django_assert_max_num_queries):
    with django_assert_max_num_queries(_write_budget("create")):
        created = api.post(
            users_url,
            {"given_name": "Pat", "family_name": "Lee", "email": "pat@example.com", "access_roles": ["provider"],
             "hpii_number": "8003614900000025", **PROVIDER},
            format="json",
        )
    assert created.status_code == 201, created.content
    assert created.json()["cognito"] == {"status": "synced"}  # the inline sync ran inside the budget
    user_url = f"{users_url}/{created.json()['id']}"

    with django_assert_max_num_queries(_write_budget("update")):
        assert api.put(user_url, {"title": "Dr", "email": "pat.lee@example.com"}, format="json").status_code == 200
    with django_assert_max_num_queries(_write_budget("roles")):
        assert api.put(f"{user_url}/roles", {"access_roles": ["admin", "provider"]}, format="json").status_code == 200
    with django_assert_max_num_queries(_write_budget("disable")):
        disabled = api.put(f"{user_url}/disable")
    assert disabled.status_code == 200
    assert disabled.json()["cognito"] == {"status": "synced"}
