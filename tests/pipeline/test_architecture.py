"""The architecture, checked: the layers and the independence of backends as import-linter contracts
(pyproject.toml, [tool.importlinter]), no import cycle between modules, no module over 400 lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

MAX_MODULE_LINES = 400


def test_the_import_contracts_hold():
    proc = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command(['--no-cache']))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout and "Layers: commands down to errors and masking KEPT" in proc.stdout


def test_no_import_cycles():
    grimp = pytest.importorskip("grimp")
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph("mlops_ci", cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    cycles = sorted({tuple(sorted((m, d))) for m in graph.modules for d in graph.find_modules_directly_imported_by(m)
                     if d != m and graph.find_shortest_chain(importer=d, imported=m)})
    assert cycles == [], f"import cycles: {cycles[:10]}"


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "mlops_ci").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"split these modules: {long}"
