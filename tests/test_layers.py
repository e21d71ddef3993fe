"""The house's layout: the wings' import contracts (pyproject.toml, [tool.importlinter]) hold,
and no module reaches itself again through its imports (TYPE_CHECKING and function-level
imports count)."""

import os
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
importlinter_cli = pytest.importorskip("importlinter.cli")

ROOT = Path(__file__).parents[1]


def test_the_wings_keep_their_import_contracts(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = importlinter_cli.lint_imports(
        config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True
    )
    assert code == 0, "lint-imports: a wing imports one above it (run `lint-imports` to see)"


def test_no_import_cycle():
    graph = grimp.build_graph("lyricgen", exclude_type_checking_imports=False, cache_dir=None)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported != importer and graph.chain_exists(imported, importer):
                cycles.append(graph.find_shortest_chain(imported, importer) + (imported,))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_the_top_level_holds_only_the_shared_base():
    top = sorted(p.stem for p in (ROOT / "lyricgen").glob("*.py"))
    assert top == ["__init__", "__main__", "atomic", "config", "errors", "typed"], top
    assert os.path.isdir(ROOT / "lyricgen" / "run")
