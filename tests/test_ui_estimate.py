"""The time estimate next to Enhance: shown before the run, close to the real time, stale ones dropped, and the lighter
model offered when the run would be long on the CPU (offscreen Qt, the real engine, the bundled models)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from enhancer.estimate import LONG_SECONDS, estimate_photo  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402

MODEL = "own-mobilesr-x4"
QUICK = "own-espcn-x4"


def write_photo(path: Path, width: int, height: int) -> Path:
    rng = np.random.default_rng(width * 1000 + height)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1), (xs * 3 + ys * 5) % 256], -1)
    Image.fromarray(np.clip(base + rng.integers(0, 60, size=base.shape), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def window(qtbot):
    settings = Settings.load()
    settings.device = "cpu"
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1280, 800)  # the toolbar must fit at this width, estimate and offer included
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def open_with_model(qtbot, window: MainWindow, path: Path, model_id: str) -> None:
    assert window.select_model(model_id)
    with qtbot.waitSignal(window.photoLoaded, timeout=20000):
        window.open_photo(path)


def test_the_estimate_appears_before_enhance_and_is_within_a_factor_of_2_of_the_run(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "hill.png", 480, 360)
    with qtbot.waitSignal(window.estimateShown, timeout=120000) as shown:
        open_with_model(qtbot, window, photo, MODEL)
    estimate = window.estimated
    assert estimate is not None and shown.args == [estimate.text]
    assert window.estimate_label.text() == estimate.text and estimate.text.endswith("on the CPU")
    assert window.estimate_label.isVisible() and window.enhance_button.isEnabled()  # next to Enhance, before it
    assert window.lighter is None  # a short run: nothing else offered
    assert window.enhance_button.toolTip().endswith(estimate.text)

    started = time.monotonic()
    with qtbot.waitSignal(window.jobEnded, timeout=300000) as ended:
        window.enhance_action.trigger()
    real = time.monotonic() - started
    assert ended.args == ["ok"], window.last_error
    ratio = estimate.seconds / real
    print(f"\n480×360 through {MODEL}: estimated {estimate.seconds:.1f} s ({estimate.text}), ran {real:.1f} s, "
          f"ratio {ratio:.2f}")
    assert 0.5 <= ratio <= 2.0


def test_an_estimate_for_an_older_choice_is_dropped(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "two.png", 300, 200)
    with qtbot.waitSignal(window.estimateShown, timeout=120000):
        open_with_model(qtbot, window, photo, QUICK)
    shown: list[str] = []
    window.estimateShown.connect(shown.append)
    window.request_estimate()
    window._estimate_timer.stop()
    window._start_estimate()  # the estimate for QUICK is running now...
    assert window._estimate is not None
    window.select_model(MODEL)  # ...and the model changes before it ends
    qtbot.waitUntil(lambda: window.estimated is not None and window._estimate is None, timeout=120000)
    qtbot.wait(200)
    job = window.make_job([str(photo)], [MODEL])
    expected = estimate_photo(job, 300, 200, window.cache)  # per-pass times are remembered: the same figures
    assert shown == [expected.text] and window.estimated.seconds == pytest.approx(expected.seconds)
    # A new output size or photo asks again; the label never shows a figure for a choice that is gone.
    window.set_output_size("x2")
    assert window.estimate_label.text() == "estimating the time…" and window.estimated is None


def test_a_long_run_on_the_cpu_offers_the_lighter_model_and_a_click_picks_it(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "big.png", 2400, 1800)
    with qtbot.waitSignal(window.estimateShown, timeout=180000):
        open_with_model(qtbot, window, photo, MODEL)
    long_run = window.estimated
    assert long_run.seconds > LONG_SECONDS, long_run
    assert window.lighter is not None, "no lighter model offered"
    model_id, quick = window.lighter
    assert model_id == QUICK and quick.seconds < window.estimated.seconds * 0.7
    assert window.lighter_action.isVisible()
    qtbot.waitUntil(window.lighter_label.isVisible, timeout=5000)  # laid out on the toolbar, not in its "»" menu
    text = window.lighter_label.text()
    assert "ESPCN" in text or QUICK in text
    assert "about" in text and "on the CPU" not in text
    print(f"\n2400×1800: {window.estimated.text}; offered {model_id}: {quick.text}")
    with qtbot.waitSignal(window.estimateShown, timeout=120000):
        window.lighter_label.linkActivated.emit(model_id)  # what a click on the link sends
    assert window.selected_model_id() == QUICK
    # Timed again for the new choice (the CPU threads in use follow the load, and each count is timed on its own).
    assert window.estimated.seconds < long_run.seconds
    assert not window.lighter_action.isVisible()
