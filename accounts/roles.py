"""Access roles. `member` is the baseline everyone has; the others are granted on top."""

MEMBER = "member"
ADMIN = "admin"
PROVIDER = "provider"
RECEPTIONIST = "receptionist"
RX_READER = "rx_reader"

ASSIGNABLE_ROLES = frozenset({ADMIN, PROVIDER, RECEPTIONIST, RX_READER})
ALL_ROLES = ASSIGNABLE_ROLES | {MEMBER}
DEFAULT_ROLES = [MEMBER]


def normalize_roles(roles) -> list[str]:
    """Sorted and without duplicates, the one form roles are stored and returned in. `member` is
    the baseline, so it appears only alone: ["admin", "member"] is ["admin"] (one access, one
    spelling; switching between two spellings would write a roles audit event for no change).
    The SQL rendering of the users list (accounts/api/user_json.py) follows the same rule."""
    unique = sorted(set(roles))
    if len(unique) > 1 and MEMBER in unique:
        unique.remove(MEMBER)
    return unique


def cognito_groups(roles) -> set[str]:
    """Each assignable role is a Cognito group of the same name; member is no group."""
    return set(roles) & ASSIGNABLE_ROLES
