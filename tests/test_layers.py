"""Imports run one way (STYLE.md): config, core ← audit ← organizations ← accounts ← the newer apps.

config and core are the plumbing and know no app (the root URLconf aside, which mounts them); audit
records events about organizations and users through string model references and imports no app;
organizations, the tenant and its lifecycle, imports audit but not accounts (what a deactivation
means for the users reaches accounts through a signal); the identifier checks are pure functions with no
Django. Nothing in the product imports the benchmarks. The newer apps (webhooks, scim, worker)
may import any layer below them. Read with `ast`, so an import inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Every Django app of the project, the newer ones included as they arrive.
APPS = {path.parent.name for path in ROOT.glob("*/apps.py")}
# Plumbing registered as an app for its command (hi_service: run_hi_emulator): any layer may use it.
PLUMBING_APPS = {"hi_service"}
NEWER_APPS = APPS - {"organizations", "audit", "accounts"} - PLUMBING_APPS
PLUMBING = {"config", "core"}

# Known upward imports, each to be removed, not added to. A stale entry fails below, so it goes when its
# import does. (The idempotency keys move out of config on the serving_worker branch.)
KNOWN_UPWARD_IMPORTS: set[tuple[str, str]] = set()


def imported_packages(source: str) -> set[str]:
    """The top-level packages a module imports, wherever in it the import is (relative imports stay inside)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def upward_imports(paths, forbidden: set[str]) -> set[tuple[str, str]]:
    found = set()
    for path in paths:
        for package in imported_packages(path.read_text()) & forbidden:
            found.add((str(path.relative_to(ROOT)), package))
    return found


def modules(package: str, *, but=()):
    return [path for path in sorted((ROOT / package).rglob("*.py")) if str(path.relative_to(ROOT)) not in but]


RULES = {
    # config/urls.py is the root URLconf: mounting the apps' views is its job.
    "config": (modules("config", but={"config/urls.py"}), APPS - PLUMBING_APPS | {"bench"}),
    "core": (modules("core"), APPS - PLUMBING_APPS | {"bench"}),
    "audit": (modules("audit"), APPS - {"audit"} - PLUMBING_APPS | {"bench"}),
    "organizations": (modules("organizations"), {"accounts", "bench"} | NEWER_APPS),
    "accounts": (modules("accounts"), NEWER_APPS | {"bench"}),
    "identifiers": (modules("identifiers"), APPS | PLUMBING | {"bench"}),
    # The HI Service client and emulator know no app; identifiers (the HPI-O check) sits below them.
    "hi_service": (modules("hi_service"), APPS - {"hi_service"} | PLUMBING | {"bench"}),
    # Beside webhooks and scim: the register check builds on accounts and the HI Service client.
    "verification": (modules("verification"), {"webhooks", "scim", "worker", "bench"}),
}


@pytest.mark.parametrize("layer", sorted(RULES))
def test_a_layer_imports_nothing_above_it(layer):
    paths, forbidden = RULES[layer]
    assert paths, f"no modules found for {layer}"
    found = upward_imports(paths, forbidden)
    known = {entry for entry in KNOWN_UPWARD_IMPORTS if entry[0].startswith(f"{layer}/")}
    assert found - known == set()
    stale = {entry for entry in known if entry not in found}
    assert not stale, f"{stale} no longer happen: delete them from KNOWN_UPWARD_IMPORTS"


def test_the_identifier_checks_import_no_django():
    packages = imported_packages((ROOT / "identifiers" / "checks.py").read_text())
    assert "django" not in packages
    assert packages & (APPS | PLUMBING | {"rest_framework"}) == set()


def test_the_apps_are_found():
    assert {"organizations", "audit", "accounts"} <= APPS


def test_an_import_anywhere_in_a_module_counts():
    source = (
        "import os\n"
        "from accounts.models import User\n"
        "from . import sibling\n"
        "def later():\n"
        "    import audit.services\n"
        "    from organizations import selectors\n"
    )
    assert imported_packages(source) == {"os", "accounts", "audit", "organizations"}
