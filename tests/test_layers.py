"""Imports run one way (docs/architecture.md): each package may import only the packages its rule in
LAYERS names, besides itself and third-party libraries. Read with `ast`, so an import inside a
function counts too.

Adding an app is one line in LAYERS: a package of the project without a line fails here, and so
does a file path named in these rules or in docs/architecture.md that does not exist.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# The layers from the bottom up: what each package of the product may import.
BASE = {"config", "core"}  # settings, and the shared plumbing that knows no app
AUDIT = BASE | {"identifiers", "audit"}
TENANT = AUDIT | {"organizations"}
CORE = TENANT | {"accounts"}  # users, their services, the API, Cognito
LAYERS: dict[str, set[str]] = {
    "identifiers": set(),  # pure checks and the model fields over them
    "config": {"core"},  # settings read the plumbing's constants; neither imports an app
    "core": {"config"},
    # organizations and users only by string model reference, never by import
    "audit": BASE | {"identifiers"},
    # the tenant and its lifecycle; what a deactivation means for users reaches accounts by a signal
    "organizations": AUDIT,
    "accounts": TENANT | {"hi_service"},  # seed_demo's providers are the emulator's fixture practitioners
    "hi_service": {"identifiers"},  # the HI Service register's client and emulator: imports no app
    "webhooks": CORE,
    "scim": CORE,
    "verification": CORE | {"hi_service"},  # beside webhooks and scim
    "worker": CORE | {"webhooks", "scim", "hi_service", "verification"},  # runs every app's jobs
    # The product never imports it; it runs the tests' moto Cognito server.
    "bench": CORE | {"webhooks", "scim", "hi_service", "verification", "worker", "tests"},
}
PROJECT_PACKAGES = set(LAYERS) | {"tests"}
# Modules whose job is to know the layers above their package's.
EXCEPTIONS = {
    "config/urls.py": set(LAYERS) - {"bench"},  # the root URLconf mounts every app's views
}
# Known upward imports, each to be removed, not added to. A stale entry fails below, so it goes when its
# import does.
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


def forbidden_imports(package: str, root: Path = ROOT) -> set[tuple[str, str]]:
    """(module, package) for every import of a project package the rules don't allow."""
    found = set()
    for path in sorted((root / package).rglob("*.py")):
        module = str(path.relative_to(root))
        allowed = LAYERS[package] | EXCEPTIONS.get(module, set()) | {package}
        for imported in imported_packages(path.read_text()) & PROJECT_PACKAGES - allowed:
            found.add((module, imported))
    return found


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_package_imports_nothing_above_it(package):
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ is not in this tree (its rule waits for it)")
    assert list((ROOT / package).rglob("*.py")), f"no modules found for {package}"
    found = forbidden_imports(package)
    known = {entry for entry in KNOWN_UPWARD_IMPORTS if entry[0].startswith(f"{package}/")}
    assert found - known == set()
    stale = {entry for entry in known if entry not in found}
    assert not stale, f"{stale} no longer happen: delete them from KNOWN_UPWARD_IMPORTS"


def test_every_package_of_the_project_has_a_rule():
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} | {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert packages - PROJECT_PACKAGES == set(), "add a line to LAYERS for each new package"


def test_the_identifier_checks_import_no_django():
    packages = imported_packages((ROOT / "identifiers" / "checks.py").read_text())
    assert "django" not in packages and "rest_framework" not in packages
    assert packages & PROJECT_PACKAGES <= {"identifiers"}


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


def test_an_upward_import_is_found(tmp_path):
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "services.py").write_text("from organizations.models import Organization\ndef f():\n    from accounts.models import User\n")
    assert forbidden_imports("audit", root=tmp_path) == {("audit/services.py", "organizations"), ("audit/services.py", "accounts")}


# A path as the docs and these rules write one: `accounts/cognito/gateway.py`, `config/*`, `worker/`.
_CITED_PATH = re.compile(r"`((?:[a-z_]+/)+(?:[a-z_]+\.(?:py|md|html|sh|toml|txt)|\*)?)`")


def cited_paths(text: str) -> set[str]:
    return {match.removesuffix("*") for match in _CITED_PATH.findall(text)}


def test_every_file_the_architecture_and_these_rules_cite_exists():
    cited = cited_paths(ARCHITECTURE.read_text(encoding="utf-8")) | set(EXCEPTIONS)
    assert cited, "no paths found: the pattern no longer matches the page"
    missing = {path for path in cited if not (ROOT / path).exists()}
    assert missing == set(), f"cited but not in the tree: {sorted(missing)}"


def test_cited_paths_are_read_as_written():
    text = "see `accounts/cognito/gateway.py` `_call`, `config/*` and `worker/`; not `user_create`"
    assert cited_paths(text) == {"accounts/cognito/gateway.py", "config/", "worker/"}
