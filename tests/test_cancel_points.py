"""The engine honours a cancel at the steps that cannot be interrupted themselves: a model load, decoding a photo, and
each step of a model import. After the cancel nothing further is written (real models, real files in tmp dirs)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from enhancer import load_model, store
from enhancer.errors import Cancelled
from enhancer.pipeline import FileStarted, Job, JobStarted, ModelCache, TileProgress, run_job

MODEL = "own-espcn-x2"  # bundled, tiny


def photo(path, width=40, height=30):
    ys, xs = np.mgrid[0:height, 0:width]
    Image.fromarray(np.stack([xs * 6, ys * 8, (xs + ys) * 3], -1).astype(np.uint8)).save(path)
    return path


def test_a_cancel_during_the_model_load_stops_before_any_photo(tmp_path):
    photo(tmp_path / "a.png")
    cancel = threading.Event()

    def loader(source, device):  # the user presses Cancel while the model loads
        cancel.set()
        return load_model(source, device)

    events = []
    with pytest.raises(Cancelled) as caught:
        run_job(Job(inputs=[tmp_path], models=[MODEL]), events=events.append, cancel=cancel,
                cache=ModelCache(loader=loader))
    assert caught.value.results == []
    assert not any(isinstance(e, (JobStarted, FileStarted)) for e in events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_cancel_during_the_load_of_the_first_model_of_a_chain_skips_the_second(tmp_path):
    photo(tmp_path / "a.png")
    cancel = threading.Event()
    loaded = []

    def loader(source, device):
        loaded.append(str(source))
        cancel.set()
        return load_model(source, device)

    with pytest.raises(Cancelled):
        run_job(Job(inputs=[tmp_path], models=[MODEL, "own-espcn-x3"]), cancel=cancel, cache=ModelCache(loader=loader))
    assert loaded == [MODEL]


def test_a_cancel_while_a_photo_decodes_stops_before_its_first_tile(tmp_path):
    for name in ("a.png", "b.png"):
        photo(tmp_path / name)
    cancel = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, FileStarted):  # decoding starts right after this
            cancel.set()

    with pytest.raises(Cancelled):
        run_job(Job(inputs=[tmp_path], models=[MODEL]), events=on_event, cancel=cancel)
    assert not any(isinstance(e, TileProgress) for e in events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_a_cancel_after_the_last_tile_writes_nothing(tmp_path):
    photo(tmp_path / "a.png")
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, TileProgress) and event.done == event.total:
            cancel.set()  # the photo is computed; its file must still not appear

    with pytest.raises(Cancelled):
        run_job(Job(inputs=[tmp_path], models=[MODEL]), events=on_event, cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("cancel_at", [1, 2, 3, 4])
def test_a_cancelled_import_copies_and_records_nothing(tmp_path, cancel_at):
    source = tmp_path / "mine.safetensors"
    source.write_bytes(store.installed_path(store.get_entry(MODEL)).read_bytes())
    asked = []

    def cancel() -> bool:  # True from the `cancel_at`-th check on: each step of the import in turn
        asked.append(1)
        return len(asked) >= cancel_at

    before = sorted(p.name for p in store.model_store().iterdir())
    with pytest.raises(Cancelled):
        store.import_model(source, cancel=cancel)
    assert sorted(p.name for p in store.model_store().iterdir()) == before
    assert not store.read_store_index().get("imported")


def test_an_import_that_is_not_cancelled_checks_every_step_and_succeeds(tmp_path):
    source = tmp_path / "mine.safetensors"
    source.write_bytes(store.installed_path(store.get_entry(MODEL)).read_bytes())
    asked = []
    entry = store.import_model(source, cancel=lambda: bool(asked.append(1)))
    assert len(asked) == 4
    assert entry.imported and store.is_installed(entry)
