"""The README stays a short front page whose links reach the docs, and `make test` builds the docs strictly (a broken
link, an anchor that does not exist or a page left out of the nav then fails the build: mkdocs.yml's validation)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200


def _slug(heading: str) -> str:
    """A heading's anchor as MkDocs' toc extension and GitHub both make it for the lab's headings (no punctuation but
    hyphens, spaces to hyphens, lower case)."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_the_readme_fits_in_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readmes_links_reach_existing_pages_and_headings():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 10, local
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links to {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(target), f"README links to {link}: no such heading in {path}"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        assert isinstance(nav, list)
        return [p for item in nav for p in pages(item)]

    assert sorted(pages(config["nav"])) == sorted(p.name for p in (ROOT / "docs").glob("*.md"))


def test_make_test_builds_the_docs_strictly():
    makefile = (ROOT / "Makefile").read_text()
    prerequisites = re.search(r"^test:(.*)$", makefile, flags=re.M)
    assert prerequisites and "docs" in prerequisites.group(1).split()
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe and "mkdocs build --strict" in recipe.group(1)
    assert "site/" in (ROOT / ".gitignore").read_text().splitlines()
