"""The README points into docs/: its relative links must name files that exist."""

from __future__ import annotations

import re

from utils import REPO_DIR


def test_readme_links_resolve() -> None:
    """The README's relative links (into docs/ and the tree) name files that exist."""
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    relative = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in relative)
    missing = [target for target in relative if not (REPO_DIR / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
