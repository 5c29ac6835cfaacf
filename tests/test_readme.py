"""The README works as written: its runnable shell blocks run, and every option it shows exists.

How a block is marked runnable: a fenced code block whose info string is `sh runnable`:

    ```sh runnable
    enhancer --model own-espcn-x2 --output-dir enhanced resources/sample_astronaut.png
    test -f enhanced/sample_astronaut_own-espcn-x2_x2.png
    ```

Such a block is written as a user types it in the repository's folder with the virtual environment active. The test
runs each one with `bash -e -o pipefail` in a fresh temporary folder holding a copy of `resources/` (so the bundled
sample photo is at the same relative path and outputs land in the temporary folder), with the venv's `bin` first on
PATH, `REPO` set to the repository, its own `ENHANCER_DATA_DIR` (model store and settings), and the test suite's pin
of the automatic backend (`ENHANCER_AUTO_BACKEND=torch`, see conftest.py). A block passes when it exits 0; a block that
writes a file checks it itself (`test -f ...`). Keep runnable blocks cheap (seconds on a CPU): bundled models only, the
sample photo, no downloads. The Quick start block (`make run`, `make test`) is never runnable: `make test` would run
this test again.

The option check reads every code block and every inline code span: an `enhancer` command's `--options` must be
options of `enhancer --help` (and an option with choices must be given one of them), `enhancer-gui`'s of
`enhancer-gui --help`, an inline span that starts with `--` is taken as an `enhancer` option, and a `make` target
must exist in the Makefile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
HANG_GUARD_S = 600  # a stuck block fails instead of hanging the suite; not a speed requirement
DOCS_IMAGE_LIMIT = 150 * 1024

FENCE = re.compile(r"^```(?P<info>[^`\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# `enhancer` as a command: at the start or after a space or shell operator, optionally with a folder in front
# (.venv/bin/enhancer, Contents/MacOS/enhancer), and not `enhancer-gui`, `photo-enhancer` or the `enhancer/` package.
ENHANCER_COMMAND = re.compile(r"(?:^|(?<=[\s;&|(]))(?:\S*/)?enhancer(?:\.exe)?(?=\s|$)")
GUI_COMMAND = re.compile(r"(?:^|(?<=[\s;&|(]))(?:\S*[/\\])?enhancer-gui(?:\.exe)?(?=\s|$)")
MAKE_COMMAND = re.compile(r"(?:^|(?<=[\s;&|(]))make((?:\s+[A-Za-z][\w-]*(?:=\S*)?)+)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
# Where one command ends in a line: a shell operator, a redirection or a comment.
COMMAND_END = re.compile(r"\s(?:\|\|?|&&|;|>|2>|#)")


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(text: str) -> list[tuple[str, str, int]]:
    """(info string, body, line number of the opening fence) of every fenced block."""
    return [(m["info"].strip(), m["body"], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def is_runnable(info: str) -> bool:
    words = info.split()
    return bool(words) and words[0] == "sh" and "runnable" in words[1:]


def runnable_blocks() -> list[tuple[str, int]]:
    return [(body, line) for info, body, line in code_blocks(readme_text()) if is_runnable(info)]


def logical_lines(body: str) -> list[str]:
    """Shell lines with backslash continuations joined."""
    return body.replace("\\\n", " ").splitlines()


def command_parts(line: str, command: re.Pattern) -> list[str]:
    """The argument text after each `command` in a line, up to where that command ends."""
    parts = []
    for match in command.finditer(line):
        rest = line[match.end():]
        end = COMMAND_END.search(rest)
        parts.append(rest[: end.start()] if end else rest)
    return parts


@lru_cache(maxsize=None)
def help_of(module: str) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The options of `python -m module --help` and, for options with choices, the choices."""
    env = dict(os.environ, COLUMNS="1000")  # no wrapping inside the usage line's {a,b,c}
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=HANG_GUARD_S)
    assert done.returncode == 0, f"{module} --help failed:\n{done.stderr}"
    options = frozenset(OPTION.findall(done.stdout))
    choices = {flag: frozenset(values.split(","))
               for flag, values in re.findall(r"(--[a-z][a-z0-9-]*) \{([^}]*)\}", done.stdout)}
    assert options, f"no options found in {module} --help:\n{done.stdout}"
    return options, choices


def option_problems(arguments: str, module: str, where: str) -> list[str]:
    """What is wrong with the options in `arguments` for the command of `module`."""
    options, choices = help_of(module)
    problems = []
    words = arguments.split()
    for index, word in enumerate(words):
        found = OPTION.match(word)
        if not found:
            continue
        flag = found.group(1)
        if flag not in options:
            problems.append(f"{where}: {flag} is not an option of {module} (in {arguments.strip()!r})")
            continue
        if flag in choices:
            value = word.split("=", 1)[1] if "=" in word else (words[index + 1] if index + 1 < len(words) else "")
            given = [v for v in value.strip("`'\"").split("|") if v and not v.isupper() and v != "..."]
            for v in given:
                if v not in choices[flag]:
                    problems.append(f"{where}: {flag} {v!r} is not one of {sorted(choices[flag])}")
    return problems


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE))


def test_quick_start_is_the_first_section_with_the_two_commands_and_is_not_runnable():
    text = readme_text()
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert sections and sections[0] == "Quick start", f"the first section is {sections[:1]}, not Quick start"
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(quick)
    assert blocks, "no code block under Quick start"
    info, body, _ = blocks[0]
    assert body.split("\n") == ["make run", "make test", ""], f"Quick start block is {body!r}"
    assert not is_runnable(info), "the Quick start block must not be runnable: make test would run this test again"


def test_there_are_runnable_blocks_and_they_stay_cheap():
    blocks = runnable_blocks()
    assert len(blocks) >= 3, "the README lost its runnable examples"
    joined = "\n".join(body for body, _ in blocks)
    assert "make test" not in joined and "make run" not in joined
    assert "--download" not in joined, "runnable blocks must not download (no network in tests)"
    for needed in ("--help", "--list-models", "--scale", "--json"):
        assert needed in joined, f"no runnable block shows {needed}"


@pytest.mark.slow
@pytest.mark.parametrize("body,line", runnable_blocks(), ids=[f"line{line}" for _, line in runnable_blocks()])
def test_runnable_block_runs(body: str, line: int, tmp_path: Path):
    shutil.copytree(ROOT / "resources", tmp_path / "resources")
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        REPO=str(ROOT),
        ENHANCER_DATA_DIR=str(tmp_path / "enhancer-data"),
        ENHANCER_AUTO_BACKEND=os.environ.get("ENHANCER_AUTO_BACKEND", "torch"),
        QT_QPA_PLATFORM="offscreen",
    )
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, (
        f"README block at line {line} exited {done.returncode}:\n{body}\n--- stdout\n{done.stdout[-3000:]}"
        f"\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_every_enhancer_option_in_the_readme_exists():
    text = readme_text()
    problems: list[str] = []
    checked = 0
    for info, body, line in code_blocks(text):
        for number, code_line in enumerate(logical_lines(body)):
            where = f"README line {line + 1 + number}"
            for arguments in command_parts(code_line, ENHANCER_COMMAND):
                problems += option_problems(arguments, "enhancer", where)
                checked += 1
            for arguments in command_parts(code_line, GUI_COMMAND):
                problems += option_problems(arguments, "ui.app", where)
    prose = FENCE.sub("", text)
    for span in INLINE_CODE.findall(prose):
        where = f"README inline `{span}`"
        enhancer_parts = command_parts(span, ENHANCER_COMMAND)
        gui_parts = command_parts(span, GUI_COMMAND)
        for arguments in enhancer_parts:
            problems += option_problems(arguments, "enhancer", where)
            checked += 1
        for arguments in gui_parts:
            problems += option_problems(arguments, "ui.app", where)
        if not enhancer_parts and not gui_parts and span.startswith("--"):
            problems += option_problems(span, "enhancer", where)
            checked += 1
    assert checked >= 20, f"only {checked} enhancer commands and options found in the README: is the parser broken?"
    assert not problems, "\n".join(problems)


def test_the_option_check_catches_a_wrong_flag_and_a_wrong_choice():
    # The checker itself, on lines that must fail: an option that does not exist, and a format that is not a choice.
    assert option_problems(" --no-such-option x.png", "enhancer", "here")
    assert option_problems(" --format bmpx x.png", "enhancer", "here")
    assert not option_problems(" --format webp --scale 2 x.png", "enhancer", "here")
    assert command_parts("xvfb-run python tests/screenshots.py --small docs", ENHANCER_COMMAND) == []
    assert command_parts("pip install 'photo-enhancer[cluster]'", ENHANCER_COMMAND) == []
    assert command_parts(".venv/bin/enhancer --json a > s.json  # note", ENHANCER_COMMAND) == [" --json a"]
    assert command_parts("enhancer-gui --self-test", GUI_COMMAND) == [" --self-test"]


def test_every_make_target_in_the_readme_exists():
    targets = make_targets()
    problems = []
    text = readme_text()
    spans = [body for _, body, _ in code_blocks(text)] + INLINE_CODE.findall(FENCE.sub("", text))
    for span in spans:
        for code_line in logical_lines(span):
            for match in MAKE_COMMAND.finditer(code_line.split("#", 1)[0]):
                for word in match.group(1).split():
                    if "=" not in word and word not in targets:
                        problems.append(f"make {word}: no such target in the Makefile ({code_line.strip()!r})")
    assert "run" in targets and "test" in targets
    assert not problems, "\n".join(problems)


def test_readme_images_exist_in_docs_and_are_small():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme_text())
    assert images, "the README shows no screenshots"
    for image in images:
        path = ROOT / image
        assert image.startswith("docs/") and path.suffix == ".png", f"{image}: README images are PNGs in docs/"
        assert path.is_file(), f"{image} is referenced by the README but missing"
        assert path.stat().st_size < DOCS_IMAGE_LIMIT, f"{image} is {path.stat().st_size // 1024} KB, over 150 KB"
    # tests/screenshots.py --small docs remakes exactly the README's images
    sys.path.insert(0, str(ROOT / "tests"))
    from screenshots import DOCS_SHOTS

    assert {Path(image).name for image in images} == set(DOCS_SHOTS)


def test_readme_links_to_files_that_exist():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme_text()):
        assert (ROOT / target).exists(), f"the README links to {target}, which does not exist"


MODEL_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9{},]+)+$")


def expand_braces(text: str) -> list[str]:
    """`swinir-jpeg-{color,gray}-q{10,20}` -> the four ids (the shell's brace expansion, no nesting)."""
    found = re.search(r"\{([^{}]*)\}", text)
    if not found:
        return [text]
    head, tail = text[: found.start()], text[found.end():]
    return [word for part in found.group(1).split(",") for word in expand_braces(head + part + tail)]


def test_every_model_id_in_the_readme_is_in_the_catalog():
    from enhancer.catalog import catalog_path, read_catalog_file

    known = {entry.id for entry in read_catalog_file(catalog_path())}
    text = readme_text()
    named: set[str] = set()
    models_section = text.split("\n## Models", 1)[1].split("\n## ", 1)[0]
    for span in INLINE_CODE.findall(FENCE.sub("", models_section)):
        if MODEL_ID.match(span) and not span.startswith("--"):
            named.update(expand_braces(span))
    commands = [body for _, body, _ in code_blocks(text)] + INLINE_CODE.findall(FENCE.sub("", text))
    for span in commands:
        for code_line in logical_lines(span):
            for arguments in command_parts(code_line, ENHANCER_COMMAND):
                named.update(re.findall(r"--(?:model|download)[ =]([a-z0-9][a-z0-9-]*)(?=\s|$)", arguments))
    assert len(named) >= 40, f"only {len(named)} model ids found in the README: is the parser broken?"
    unknown = sorted(named - known)
    assert not unknown, f"the README names models that are not in models/catalog.toml: {unknown}"
