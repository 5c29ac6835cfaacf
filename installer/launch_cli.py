"""Entry point of the frozen `enhancer` command. `--self-test` runs the self-test instead of a normal command line."""

import multiprocessing
import sys


def launch() -> int:
    if "--self-test" in sys.argv[1:]:
        from enhancer.selftest import run_self_test

        return run_self_test()
    from enhancer.cli import main

    return main()


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app re-runs itself for any child process; this stops that there
    sys.exit(launch())
