"""Resident memory of the app over a long batch: the real BatchDialog (offscreen Qt) on 100 photos made in a temporary
folder, with a light bundled model. Prints the RSS after photo 10 and after photo 100 and their ratio; the goal is a
ratio within 1.10 (no growth per photo: no leaked tiles, results, QImages or progress events).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/app_memory.py [--photos 100] [--size 320x240] \\
        [--model own-espcn-x2] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EARLY = 10  # the photo after which the heap has warmed up (model loaded, first tiles planned, caches filled)
GOAL = 1.10


def rss_bytes() -> int:
    """The current resident set size of this process (Linux /proc; elsewhere the peak, which bounds it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def make_photos(folder: Path, count: int, width: int, height: int) -> None:
    """Photo-like PNGs (gradients, texture and noise, each different) so every one goes through the real decoder."""
    import numpy as np
    from PIL import Image

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        rng = np.random.default_rng(index)
        phase = index * 0.37
        base = np.stack([
            128 + 100 * np.sin(xs / (9 + index % 7) + phase),
            128 + 100 * np.cos(ys / (11 + index % 5) - phase),
            (xs + ys + index * 13) % 256,
        ], -1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{index:03d}.png")


def run(photos: int, width: int, height: int, model: str, threads: int) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="app-memory-") as tmp:
        tmp_path = Path(tmp)
        os.environ["ENHANCER_DATA_DIR"] = str(tmp_path / "data")  # a clean store and settings, not the user's
        source, out = tmp_path / "photos", tmp_path / "out"
        source.mkdir()
        make_photos(source, photos, width, height)

        import torch
        from PySide6.QtCore import QEventLoop, QTimer
        from PySide6.QtWidgets import QApplication

        torch.set_num_threads(threads)
        app = QApplication.instance() or QApplication([])
        from ui.batch_dialog import BatchDialog
        from ui.settings import Settings

        settings = Settings.load()
        settings.output_dir = str(out)
        dialog = BatchDialog(settings, folder=str(source), model_id=model)
        dialog.show()
        if dialog.chosen_models() != [model]:
            raise SystemExit(f"{model} is not an installed model here")
        samples: dict[int, int] = {}
        loop = QEventLoop()

        def finished(index: int) -> None:  # in the UI thread, right after the dialog took in photo `index`
            if index and dialog.results and dialog.results[-1].status != "ok":
                raise SystemExit(f"photo {index} failed: {dialog.results[-1].error}")
            if index in (1, EARLY, photos):
                samples[index] = rss_bytes()

        dialog.overall_progress.valueChanged.connect(finished)

        ended: list[str] = []
        dialog.batchEnded.connect(lambda how: (ended.append(how), loop.quit()))
        started = time.monotonic()
        dialog.start_button.click()
        QTimer.singleShot(3600 * 1000, loop.quit)  # a hung run must still end
        loop.exec()
        seconds = time.monotonic() - started
        if ended != ["done"]:
            raise SystemExit(f"the batch ended with {ended or 'a timeout'}: {dialog.summary_label.text()}")
        written = sum(1 for p in out.iterdir() if p.is_file())
        dialog.close()
        app.processEvents()
    early, last = samples[EARLY], samples[photos]
    return {
        "photos": photos, "size": f"{width}x{height}", "model": model, "threads": threads, "written": written,
        "seconds": round(seconds, 1), "rss_photo_1_mib": round(samples[1] / 2**20, 1),
        f"rss_photo_{EARLY}_mib": round(early / 2**20, 1), f"rss_photo_{photos}_mib": round(last / 2**20, 1),
        "ratio": round(last / early, 4), "goal": GOAL, "ok": last / early <= GOAL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of each photo")
    parser.add_argument("--model", default="own-espcn-x2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.photos <= EARLY:
        parser.error(f"--photos must be more than {EARLY}")
    width, height = (int(v) for v in args.size.lower().split("x"))
    result = run(args.photos, width, height, args.model, args.threads)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['photos']} photos of {result['size']} through {result['model']} in the app's batch dialog "
          f"({result['threads']} threads, {result['seconds']} s, {result['written']} written)")
    print(f"RSS after photo 1:   {result['rss_photo_1_mib']:8.1f} MiB")
    print(f"RSS after photo {EARLY}:  {result[f'rss_photo_{EARLY}_mib']:8.1f} MiB")
    last_key = f"rss_photo_{result['photos']}_mib"
    print(f"RSS after photo {result['photos']}: {result[last_key]:8.1f} MiB")
    print(f"ratio {result['ratio']:.3f} (goal <= {GOAL}): {'ok' if result['ok'] else 'MISSED'}")


if __name__ == "__main__":
    main()
