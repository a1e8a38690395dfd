"""organizations is the base layer: it imports neither audit nor accounts (nor any newer app)."""

import ast
from pathlib import Path

import organizations

ABOVE = {"accounts", "audit", "webhooks", "scim", "worker"}


def test_organizations_imports_nothing_above_it():
    root = Path(organizations.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(root)}: {name}" for name in names if name.split(".")[0] in ABOVE]
    assert offenders == []
