"""The `enhancer` command. (Placeholder; the CLI issue completes it.)"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enhancer", description="Enhance photos with SwinIR, Restormer and MobileSR.")
    parser.add_argument("inputs", nargs="*", metavar="INPUT")
    parser.parse_args(argv)
    return 0
