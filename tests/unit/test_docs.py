"""The documentation site's sources: every public name has an entry in the API
reference, the generated references list every setting, function and
reduction of the code, and every page is in the table of contents. (The site
itself is built by .ci/run with ``sphinx-build -W``.)"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def documented() -> set[str]:
    text = (DOCS / "api.rst").read_text()
    return set(re.findall(r"^\.\. auto(?:class|function|exception|module):: ([\w.]+)", text,
                          re.M))


@pytest.mark.parametrize("module", ["dredux", "dredux.cluster", "dredux.errors"])
def test_every_public_name_is_in_the_api_reference(module):
    names = importlib.import_module(module).__all__
    found = documented()
    missing = []
    for name in names:
        if name.startswith("__"):
            continue
        # errors are documented under their dredux.X name
        if not ({f"{module}.{name}", f"dredux.{name}"} & found):
            missing.append(f"{module}.{name}")
    assert not missing, f"docs/api.rst has no entry for {missing}"


def test_config_functions_are_documented():
    import dredux.config as config

    found = documented()
    for name in config.__all__:
        if callable(getattr(config, name)):
            assert f"dredux.config.{name}" in found, name


def _generated():
    sys.path.insert(0, str(DOCS))
    try:
        import generate
    finally:
        sys.path.remove(str(DOCS))
    return generate


def test_generated_references_list_everything_the_code_has():
    from dredux.config import KEYS, environment_variable
    from dredux.functions import FUNCTIONS
    from dredux.reductions import REDUCTIONS

    generate = _generated()
    config_page, ops_page = generate.config_page(), generate.operations_page()
    for key in KEYS:
        assert f"``dredux.{key}``" in config_page and environment_variable(key) in config_page
    for name in FUNCTIONS:
        assert f"* - ``{name}``" in ops_page, name
    for name in REDUCTIONS:
        assert f"* - ``{name}``" in ops_page, name


def test_every_page_is_in_the_table_of_contents():
    index = (DOCS / "index.rst").read_text()
    entries = set(re.findall(r"^   ([\w/]+)$", index, re.M))
    pages = {p.stem for p in DOCS.glob("*.md")} | {"api"}
    assert pages <= entries, pages - entries
    assert {"generated/config", "generated/operations", "auto_examples/index"} <= entries


def test_gallery_examples_check_their_results():
    scripts = sorted((ROOT / "examples" / "gallery").glob("plot_*.py"))
    assert len(scripts) >= 7
    for script in scripts:
        text = script.read_text()
        assert text.startswith('"""\n') and "\n===" in text.split('"""')[1], script.name
        assert "assert " in text, f"{script.name} checks nothing"
        assert "plt.show()" in text, f"{script.name} draws nothing"
