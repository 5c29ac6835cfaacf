"""The layering contract, checked on the source: the engine never imports Qt or the app, and the networks under
`enhancer/archs/` import nothing from the pipeline, the model store, the catalog, the CLI or the other engine
modules above them. Checked statically (every import statement, also those inside functions) and at run time
(importing the engine leaves Qt unloaded)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

ENGINE = ROOT / "enhancer"
ARCHS = ENGINE / "archs"
# What a network package may use from the rest of the engine: the errors and what the CPU/GPU can run.
ARCHS_MAY_IMPORT = {"enhancer.errors", "enhancer.devices"}


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module an engine file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x` imports module x
    return names


def test_the_engine_never_imports_qt_or_the_app():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if n.split(".")[0] in ("PySide6", "ui"))
        for path in ENGINE.rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"enhancer/ must not import Qt or ui/: {offenders}"


def test_networks_import_nothing_from_the_pipeline_store_or_cli():
    engine_modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in ENGINE.glob("*.py") if p.name != "__init__.py"
    }
    offenders: dict[str, list[str]] = {}
    for path in ARCHS.rglob("*.py"):
        outside = sorted(
            name for name in imported_modules(path)
            if (name in engine_modules or name == "enhancer" or name.startswith("enhancer.training"))
            and name not in ARCHS_MAY_IMPORT
        )
        if outside:
            offenders[str(path.relative_to(ROOT))] = outside
    assert not offenders, f"enhancer/archs/ may import only {sorted(ARCHS_MAY_IMPORT)} from the engine: {offenders}"


def test_the_contract_check_sees_relative_and_function_level_imports(tmp_path):
    """The checker itself: a relative import inside a function is resolved and reported."""
    package = tmp_path / "enhancer" / "archs" / "demo"
    package.mkdir(parents=True)
    source = package / "network.py"
    source.write_text("def f():\n    from ...pipeline import run_job\n    from PySide6 import QtCore\n")
    assert {"enhancer.pipeline", "enhancer.pipeline.run_job", "PySide6"} <= imported_modules(source, tmp_path)


def test_importing_the_engine_and_running_the_cli_help_loads_no_qt():
    code = (
        "import sys, enhancer, enhancer.cli, enhancer.pipeline, enhancer.archs as a; a.specs(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'ui')))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]", run.stdout
