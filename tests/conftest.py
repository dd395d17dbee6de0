"""Hermetic tests (hatch's tests/conftest.py): no colour, fixed width, a private HOME, and no
launch variables leaking in from the shell that runs pytest."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAKES = REPO / "tests" / "fakes"
from lorakit import envvars  # noqa: E402

# Every variable that changes how ms-swift launches: the shell running pytest must not decide a test.
LAUNCH_VARS = (*envvars.LAUNCH, *envvars.DEVICE_LISTS[1:], *envvars.SCRUBBED)


@pytest.fixture(autouse=True)
def hermetic(monkeypatch, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(home / "ms"))
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if envvars.is_scrubbed(n)]:
        monkeypatch.delenv(name, raising=False)


_VL_SITE: list[str] = []


@pytest.fixture(autouse=True)
def qwen_vl_utils_installed(monkeypatch, tmp_path_factory):
    """The machine a test stands for has qwen_vl_utils 0.0.14, as every machine that runs ms-swift's
    Qwen-VL examples has (this venv does not install it): its dist-info first on sys.path, where
    checks/visionutils.py looks. Tests of a missing or older one put their own site first."""
    if not _VL_SITE:
        site = tmp_path_factory.mktemp("vl_site")
        (site / "qwen_vl_utils-0.0.14.dist-info").mkdir()
        (site / "qwen_vl_utils-0.0.14.dist-info" / "METADATA").write_text("Name: qwen_vl_utils\nVersion: 0.0.14\n")
        _VL_SITE.append(str(site))
    monkeypatch.setattr(sys, "path", [_VL_SITE[0], *sys.path])


def swift3_python() -> str:
    """The Python with ms-swift 3.x that scripts/test.sh builds: a skip on a laptop without it, a
    failure in CI (a 3.x check that silently skips there is a hole)."""
    python = os.environ.get("LORAKIT_SWIFT3_PYTHON")
    if not python:
        if os.environ.get("CI"):
            pytest.fail("CI must check ms-swift 3.x: scripts/test.sh sets LORAKIT_SWIFT3_PYTHON")
        pytest.skip("set LORAKIT_SWIFT3_PYTHON to a Python with ms-swift 3.x (scripts/test.sh does)")
    return python


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def swift_source(relative: str) -> list[str]:
    """The lines of one file of the installed ms-swift 4.x (found, not imported), for tests that cite
    the line a check quotes; skips where ms-swift is not installed (scripts/test.sh installs it)."""
    import importlib.util

    spec = importlib.util.find_spec("swift")
    if spec is None:
        pytest.skip("ms-swift is not installed (scripts/test.sh installs it)")
    return (Path(spec.origin).parent / relative).read_text(encoding="utf-8").splitlines()


# The wheel cache the table generators (scripts/gen_swift_*.py) download ms-swift's releases into.
WHEELS = os.environ.get("LORAKIT_SWIFT_WHEELS") or str(Path.home() / ".cache" / "lorakit" / "swift-wheels")


def imported_by(argv: list[str], module: str, cwd) -> bool:
    """Whether `lorakit ARGV` (run in a fresh interpreter in cwd) imports `module`: what a dry-run
    pays for only when the job needs it."""
    import subprocess

    code = (f"import sys\nfrom lorakit.cli.app import main\nsys.argv={['lorakit', *argv]!r}\n"
            f"try:\n    main()\nexcept SystemExit:\n    pass\nprint({module!r} in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)
    last = done.stdout.strip().splitlines()[-1:]
    assert last in (["True"], ["False"]), done.stdout + done.stderr
    return last == ["True"]


def regenerate_pinned(script: str) -> None:
    """Rebuild a generated table from exactly the versions it lists (--pinned --check): it must come
    out as committed. A skip only when pip reaches no index (the generators' exit 3)."""
    import subprocess

    done = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--pinned", "--check", "--cache", WHEELS],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    if done.returncode == 3:
        pytest.skip(f"no package index: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-3000:]


def run_cli(args: list[str], *, env: dict[str, str] | None = None) -> CliResult:
    """Run lorakit's real entry point (errors mapped to exit codes) in-process."""
    from lorakit.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr, dict(os.environ)
    sys.stdout, sys.stderr = out, err
    if env:
        os.environ.update(env)
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        os.environ.clear()
        os.environ.update(saved[2])
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli
