"""Entry point of the frozen desktop app (`enhancer-gui`). `--self-test` runs the headless self-test instead of the window."""

import multiprocessing
import sys


def launch() -> int:
    if "--self-test" in sys.argv[1:]:
        from enhancer.selftest import run_self_test

        return run_self_test()
    from ui.app import main

    return main()


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app re-runs itself for any child process; this stops that there
    sys.exit(launch())
