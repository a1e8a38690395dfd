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
    """Sorted and without duplicates, the one form roles are stored and returned in."""
    return sorted(set(roles))


def cognito_groups(roles) -> set[str]:
    """Each assignable role is a Cognito group of the same name; member is no group."""
    return set(roles) & ASSIGNABLE_ROLES
