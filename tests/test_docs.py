"""The README stays a front door (at most 250 lines) and every relative link in it and in docs/
resolves: to a file that exists and, when it names an anchor, to a heading of that file.

`mkdocs build --strict` (scripts/test.sh) checks the links between docs pages as MkDocs renders
them; this test also covers the README, which MkDocs does not build, and runs with the suite.
"""

import re
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code removed."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, INLINE_CODE.sub("", line)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension (MkDocs) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = candidate = slug(match.group(1))
            counter = 0
            while candidate in found:  # a repeated heading gets _1, _2, ... as in Python-Markdown
                counter += 1
                candidate = f"{base}_{counter}"
            found.add(candidate)
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, line in prose_lines(path.read_text()):
        for target in LINK.findall(line):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not linked.exists():
                problems.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where} (no heading with that anchor)")
    return problems


def test_the_readme_is_at_most_250_lines():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the detail into docs/"


def test_the_readme_says_what_a_newcomer_can_set_and_where_the_changes_are():
    """A fresh clone's reader: the ports `make run` takes (the variables its script reads), the
    database `make test` takes, what an IdP's group push does, and the integrators' change list."""
    readme = (ROOT / "README.md").read_text()
    run_demo = (ROOT / "scripts" / "run_demo.sh").read_text()
    for variable in ("PORT", "COGNITO_PORT", "HI_EMULATOR_PORT"):
        assert f'{variable}="${{{variable}:-' in run_demo, variable  # the script really reads it
        assert f"`{variable}`" in readme, variable
    assert 'DATABASE_URL="${DATABASE_URL:-' in (ROOT / "scripts" / "test.sh").read_text()
    assert "`DATABASE_URL`" in readme.split("## Five minutes")[0]  # beside make test, not only production
    assert "PUT /scim/v2/Groups/{role}" in readme and "empty `members`" in readme
    assert "(docs/integrators.md#what-changed-for-integrators)" in readme
    assert "refuses to start" in readme.split("## In production")[1]  # core/limits.py: the start-up refusal



def _readme_section(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_says_how_to_connect_to_the_hi_service_and_how_the_emulator_stands_in():
    section = _readme_section("## The HI Service (prescribers match the official register)")
    for needed in ("PCIN", "contracted-service-provider (CSP)", "NASH", "links its HPI-O", "PRODA",
                   "`HI_SERVICE_URL`", "`HI_SERVICE_CLIENT_CERT`", "`run_hi_emulator`", "throwaway CA",
                   "(docs/operators.md#connecting-to-the-real-hi-service)"):
        assert needed in section, needed


def test_the_readme_upgrade_section_gives_the_first_pass_at_the_registers_default_rate():
    section = _readme_section("## Upgrading")
    settings_source = (ROOT / "config" / "settings.py").read_text()
    rate = float(re.search(r'"HI_MAX_REQUESTS_PER_SECOND", default=([0-9.]+)\)', settings_source)[1])
    providers, seconds = (int(n.replace(",", "")) for n in re.search(
        r"([0-9,]+) providers take ([0-9,]+) s", section).groups())
    assert seconds == providers / rate
    hours, minutes = (int(n) for n in re.search(r"about (\d+) h (\d+) min", section).groups())
    assert hours * 60 + minutes == round(seconds / 60)
    assert f"default {rate:g})" in section
    assert "`HI_VERIFICATION_REQUIRED=false` (`check --deploy` warns" in section

@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_docs_pages_are_found():
    names = {str(path.relative_to(ROOT)) for path in markdown_files()}
    assert {"README.md", "docs/index.md", "docs/integrators.md", "docs/operators.md"} <= names


def test_a_missing_file_or_anchor_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "page.md").write_text("# A page\n\n## The `make run` demo\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](page.md#the-make-run-demo) [top](#readme) [web](https://example.org/x.md)\n"
        "[gone](docs/gone.md) [bad anchor](page.md#nowhere)\n"
        "```\n[in a code block](ignored.md)\n```\n"
        "`[inline code](ignored.md)`\n"
        "# Readme\n"
    )
    assert broken_links(readme) == [
        "README.md:2: docs/gone.md (no such file)",
        "README.md:2: page.md#nowhere (no heading with that anchor)",
    ]
