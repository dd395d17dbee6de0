"""Run many `swift sft` command lines in ONE Python process and record how each ends.

    python tests/real_failures_harness.py CASES.json OUT.json [MODEL_DIR]

CASES.json maps a case name to {"argv": [...flags after `swift sft`...], "cwd": DIR, "env": {...}},
or to {"call": "module:function", "args": [...]} for one ms-swift function that a run needs
hardware to reach. OUT.json gets {name: "ExcType: message [at file:line]"} ("ok" for a run that
finished, "ok: RESULT" for a call), rewritten after every case so a crash keeps what came before.
Importing ms-swift takes ~10 s; doing it once for every case is what keeps
tests/test_real_failures.py fast. MODEL_DIR, when given, gets lorakit.tiny's model first (this
process imports torch anyway; the test's own process then never does).

The entry point is the one `swift sft` runs: swift/cli/sft.py calls `swift.pipelines.sft_main`
(4.x) or `swift.llm.sft_main` (3.x) after its unsloth/ray set-up, which a CPU run does not use.
argparse reports a bad flag on stderr and exits 2; that text is what the user sees, so a
SystemExit is recorded with the stderr it wrote.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import time
import traceback


def entry_point():
    try:
        from swift.pipelines import sft_main  # 4.x: swift/cli/sft.py
    except ImportError:
        from swift.llm import sft_main  # 3.x: swift/cli/sft.py
    return sft_main


def outcome(sft_main, case: dict) -> str:
    err, result = io.StringIO(), None
    try:
        with contextlib.redirect_stderr(err):
            if "call" in case:
                module, name = case["call"].split(":")
                result = getattr(importlib.import_module(module), name)(*case["args"])
            else:
                sft_main(list(case["argv"]))
    except SystemExit as exc:  # argparse: "error: ..." on stderr, exit 2
        said = [line for line in err.getvalue().splitlines() if line.strip()]
        return f"SystemExit: {exc.code}: " + " | ".join(said[-3:])
    except BaseException as exc:  # noqa: BLE001 - recording how ms-swift stops is the point
        tail = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__}: {exc} [at {tail.filename}:{tail.lineno}]"
    return "ok" if "call" not in case else f"ok: {result!r}"


def make_model(where: str) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))
    from lorakit.tiny import make_tiny_model  # torch and transformers only: no ms-swift

    make_tiny_model(where)
    with open(where.rstrip("/") + ".ready", "w"):  # the test's lorakit checks may start on it now
        pass


def main(cases_path: str, out_path: str, model: str | None = None) -> int:
    if model is not None:
        make_model(model)
    cases = json.loads(open(cases_path, encoding="utf-8").read())
    sft_main = entry_point()
    results: dict[str, str] = {}
    home, environ = os.getcwd(), dict(os.environ)
    for name, case in cases.items():
        os.environ.update(case.get("env", {}))
        os.chdir(case.get("cwd", home))
        start = time.monotonic()
        try:
            results[name] = outcome(sft_main, case)
        finally:
            os.chdir(home)
            os.environ.clear()
            os.environ.update(environ)
        print(f"[harness] {name} ({time.monotonic() - start:.1f} s): {results[name][:300]}", flush=True)
        with open(out_path, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
