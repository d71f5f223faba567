"""The documentation site (mkdocs.yml, docs/) and the short README.

The site is built once per session with ``mkdocs build --strict`` into a temporary folder: a broken link or
anchor, a page missing from the navigation, a navigation entry without its page, or any other MkDocs warning
fails the build. Then the built API reference is held to app/chalicelib/openapi.json (every operation and every
path), and the README to its one or two screens, with every relative link resolving.
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = json.loads((ROOT / "app" / "chalicelib" / "openapi.json").read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch")
README_MAX_LINES = 250


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    # NO_MKDOCS_2_WARNING: Material prints a banner about its successor on every build otherwise.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    built = mkdocs_build(ROOT / "mkdocs.yml", site)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    return site


def text_of(page: Path) -> str:
    """A built page's text, tags removed and entities decoded, so `GET /messages/{message_id}` reads as written."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_site_builds_strict_and_every_nav_page_exists_and_is_built(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True and config["theme"]["font"] is False
    pages = nav_pages(config["nav"])
    assert len(pages) == len(set(pages))
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page
        built = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert built.is_file(), page
    # The pages, each in the navigation.
    for page in ("quick-start.md", "concepts/status.md", "concepts/providers.md", "guides/deploy.md", "guides/mms.md",
                 "guides/batches.md", "guides/webhooks.md", "guides/replies-opt-outs.md", "guides/keys.md",
                 "guides/templates-scheduling.md", "guides/reports.md", "guides/client-cli.md", "reference/api.md",
                 "configuration.md", "operations/alarms.md", "operations/dashboard.md", "operations/preflight.md",
                 "operations/smoke.md", "costs.md", "local-stack.md", "architecture.md", "never-run.md"):
        assert page in pages, page


def test_the_api_reference_holds_every_operation_and_path_of_the_document(site):
    text = text_of(site / "reference" / "api" / "index.html")
    assert "<!--" not in (site / "reference" / "api" / "index.html").read_text(encoding="utf-8").split(
        'class="md-content"')[1], "the hook's marker line was left in the page"
    operations = [(method, path, op) for path, item in DOCUMENT["paths"].items()
                  for method, op in item.items() if method in METHODS]
    assert len(operations) >= 20
    for method, path, op in operations:
        assert f"{method.upper()} {path}" in text, (method, path)
        assert f"({op['operationId']})" in text, op["operationId"]
    for name, item in DOCUMENT.get("webhooks", {}).items():
        for method, op in item.items():
            if method in METHODS:
                assert name in text and f"({op['operationId']})" in text, name
    schemas = [name for name in DOCUMENT["components"]["schemas"] if not name.startswith("Error")]
    for name in schemas:
        assert (site / "reference" / "api" / "index.html").read_text(encoding="utf-8").count(
            f'id="schema-{name.lower()}"') == 1, name


def test_the_readme_is_one_screen_or_two_and_its_relative_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link) and not link.startswith("#")]
    assert len(relative) >= 20, relative  # the links into the site
    for link in relative:
        assert (ROOT / link.split("#")[0]).is_file(), link
    # The two commands, exactly as the quick start gives them.
    for command in ("make dev     # sets up .venv", "make test    # sets up .venv"):
        assert command in readme and command in (ROOT / "docs" / "quick-start.md").read_text(encoding="utf-8")


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path):
    """The site's own settings (validation, strict) on two pages: a link to a page that does not exist and to an
    anchor that does not exist each fail the build. MkDocs only logs missing anchors at INFO by default."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](missing.md) and [nowhere](other.md#no-such-heading)\n")
    (docs / "other.md").write_text("# Other\n\n## A heading\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: docs\nhooks: []\n"
                      "nav:\n  - Home: index.md\n  - Other: other.md\n")
    built = mkdocs_build(config, tmp_path / "site")
    assert built.returncode != 0
    assert "missing.md" in built.stderr and "no-such-heading" in built.stderr, built.stderr


def test_no_sub_item_is_indented_less_than_four_spaces():
    """Python-Markdown nests a list only under four spaces: a sub-item indented two (as GitHub takes it) renders as
    one more item of the list above, flattening what was written as its detail."""
    shallow = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        fenced = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and re.match(r"^ {1,3}(?:[-*+]|\d+\.) ", line):
                shallow.append(f"{page.relative_to(ROOT)}:{number}: {line.strip()[:60]}")
    assert not shallow, "\n".join(shallow)
