"""The small shared modules: atomic writes, the app's paths and the option vocabularies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT
from enhancer import atomic, options, paths


def test_atomic_file_commits_whole_or_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic.AtomicFile(target, "w", encoding="utf-8") as fh:
        fh.write("new")
        assert target.read_text() == "old"  # nothing visible before the block ends
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(atomic.TEMP_PREFIX)]
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == atomic.NEW_FILE_MODE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]

    with pytest.raises(RuntimeError):
        with atomic.AtomicFile(target, "w", encoding="utf-8") as fh:
            fh.write("half")
            raise RuntimeError("encoder failed")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_file_without_replace_never_replaces(tmp_path):
    target = tmp_path / "photo.png"
    with atomic.AtomicFile(target, replace=False, prefix=".photo.png.", suffix=".part") as fh:
        fh.write(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        with atomic.AtomicFile(target, replace=False) as fh:
            fh.write(b"second")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_move_into_place(tmp_path):
    part = tmp_path / "model.pth.part"
    part.write_bytes(b"weights")
    atomic.move_into_place(part, tmp_path / "model.pth")
    assert (tmp_path / "model.pth").read_bytes() == b"weights" and not part.exists()
    part.write_bytes(b"other")
    with pytest.raises(FileExistsError):
        atomic.move_into_place(part, tmp_path / "model.pth", replace=False)
    assert part.exists() and (tmp_path / "model.pth").read_bytes() == b"weights"


def test_paths_honour_the_data_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "portable"))
    assert paths.data_dir() == tmp_path / "portable"
    assert paths.config_dir() == tmp_path / "portable"
    assert paths.app_models_dir() == ROOT / "models"
    monkeypatch.delenv(paths.DATA_DIR_ENV)
    assert paths.APP_NAME in str(paths.data_dir()) and paths.APP_NAME in str(paths.config_dir())
    assert paths.APP_NAME in str(paths.cache_dir())


def test_the_vocabularies_are_the_ones_everything_uses():
    from enhancer import cli, devices, pipeline

    parser = cli.build_parser()
    choices = {action.dest: tuple(action.choices) for action in parser._actions if action.choices}
    assert choices["format"] == options.available_output_formats()
    assert choices["device"] == options.DEVICES
    assert choices["precision"] == options.PRECISIONS
    assert devices.PRECISIONS is options.PRECISIONS
    assert pipeline.OUTPUT_FORMATS is options.OUTPUT_FORMATS
    assert all(values[0] in ("same", "auto") for values in (options.OUTPUT_FORMATS, options.DEVICES, options.PRECISIONS))


def _top_level_engine_imports(path: Path) -> set[str]:
    """The engine modules a file imports at module level (imports inside functions are not counted)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        nodes = [node] + (list(ast.walk(node)) if isinstance(node, ast.Try) else [])
        for item in nodes:
            if isinstance(item, ast.ImportFrom) and item.level == 1:
                names.update([item.module.split(".")[0]] if item.module else [a.name for a in item.names])
    return names


def test_no_import_circle_between_catalog_store_and_checkpoints():
    engine = ROOT / "enhancer"
    for leaf in ("paths", "options", "atomic"):
        assert not _top_level_engine_imports(engine / f"{leaf}.py") - {"errors"}, leaf
    assert "store" not in _top_level_engine_imports(engine / "catalog.py")
    assert "from .store" not in (engine / "catalog.py").read_text()  # not even inside a function
    assert not {"store", "catalog"} & _top_level_engine_imports(engine / "checkpoints.py")
    checkpoints_source = (engine / "checkpoints.py").read_text()
    assert "from .catalog" not in checkpoints_source  # it asks the store, lazily, for the file behind an id
