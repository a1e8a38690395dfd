"""The operators' configuration table lists exactly the environment variables the service reads:
config/settings.py (the app's one settings module) and gunicorn.conf.py (gunicorn's own, read before
Django). A variable read but not documented, or documented but no longer read, fails here."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where the operators' configuration table lives: the one place to change when it moves into docs/.
CONFIGURATION_PAGE = ROOT / "docs" / "operators.md"
CONFIGURATION_HEADING = "## Configuration"
READERS_OF_THE_ENVIRONMENT = (ROOT / "config" / "settings.py", ROOT / "config" / "serving.py", ROOT / "gunicorn.conf.py")
# The functions of those modules that read a variable named by their first argument.
_READERS = {"env", "_positive", "_int_env", "int_env"}


def documented_variables(page: Path = CONFIGURATION_PAGE) -> set[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(CONFIGURATION_HEADING) + 1
    names = set()
    for line in lines[start:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def variables_read(source: str) -> set[str]:
    """Names passed as the first argument to env(...), env.<type>(...), the modules' own readers, and
    os.environ.get / os.getenv / os.environ[...]."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            reader = (
                (isinstance(func, ast.Name) and func.id in _READERS)
                or (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env")
                or (isinstance(func, ast.Attribute) and ast.unparse(func) in {"os.environ.get", "os.getenv"})
            )
            if reader and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
        elif (
            isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


def test_the_configuration_table_lists_every_variable_the_service_reads_and_no_other():
    read = set().union(*(variables_read(path.read_text()) for path in READERS_OF_THE_ENVIRONMENT))
    documented = documented_variables()

    assert read - documented == set(), f"read but not in {CONFIGURATION_PAGE.name}'s table"
    assert documented - read == set(), "in the table but read nowhere"


def test_the_table_is_found_and_the_readers_are_recognised():
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "GUNICORN_THREADS"} <= documented_variables()
    source = (
        'A = env("ONE", default=1)\nB = env.int("TWO")\nC = _positive("THREE", 2)\n'
        'D = os.environ.get("FOUR", "")\nE = os.environ["FIVE"]\nF = _int_env("SIX", 3)\nG = other("SEVEN")\n'
    )
    assert variables_read(source) == {"ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX"}
