"""The fixture register: every identifier passes the product's own checks, so the register decides."""

import pytest

from hi_service import fixtures
from identifiers.checks import validate_ahpra_number, validate_hpii, validate_hpio


@pytest.mark.parametrize("key", sorted(fixtures.PRACTITIONERS))
def test_every_fixture_hpii_and_ahpra_number_passes_the_checks(key):
    practitioner = fixtures.PRACTITIONERS[key]
    assert validate_hpii(practitioner.hpii) == practitioner.hpii
    assert validate_ahpra_number(practitioner.registration_id) == practitioner.registration_id


def test_fixture_identifiers_are_unique_and_the_hpio_is_valid():
    practitioners = fixtures.PRACTITIONERS.values()
    assert len({p.hpii for p in practitioners}) == len(fixtures.PRACTITIONERS)
    assert len({p.registration_id for p in practitioners}) == len(fixtures.PRACTITIONERS)
    assert validate_hpio(fixtures.FIXTURE_HPIO) == fixtures.FIXTURE_HPIO


def test_the_fixture_table_in_the_docstring_matches_the_register():
    for key, practitioner in fixtures.PRACTITIONERS.items():
        row = next(line for line in fixtures.__doc__.splitlines() if line.startswith(f"| {key} "))
        assert practitioner.hpii in row and practitioner.registration_id in row and practitioner.family_name in row
