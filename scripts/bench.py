#!/usr/bin/env python3
"""How much lorakit itself costs, measured against what it cannot beat: a benchmark, not a test.

    python scripts/bench.py [--runs 15] [--swift-runs 5] [--no-swift] [--json FILE]

Every measurement is a fresh process, timed from start to exit (wall clock, medians over the
runs); the commands of one comparison run interleaved, round after round, so that a busy
machine slows both sides alike. Prints a markdown table and the machine it ran on.

  1. `lorakit train --preset zero2 --dry-run` against the import floor of lorakit's own deps
     (`python -c "import typer, yaml, rich.console"`); target ratio <= 1.3.
  2. Reporting the typo `lora_rnak`: `lorakit validate --set lora_rnak=8` against ms-swift itself
     (`swift sft ... --lora_rnak 8`, the same job, until it exits), on lorakit.tiny's model.
  3. Launch overhead: `lorakit train` with a `swift` that exits at once, against that `swift` run
     directly (and, if lorakit has --log, with the output piped through lorakit).
  4. Peak memory (max RSS) of the dry-run against the import floor's.
  5. The dataset check's cost: `lorakit train -p single --dry-run` with a local 100k-line .jsonl
     (read in a bounded prefix: lorakit.datafile) against the same with a hub dataset id;
     target <= +50 ms.
  6. The loss-scale check's cost: the single preset's dry-run with a --loss_scale against without.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

FLOOR = [sys.executable, "-c", "import typer, yaml, rich.console"]
TARGET = 1.3
DATA_TARGET = 0.050  # seconds the dataset check may add for a 100k-line local file
DATA_LINES = 100_000


def big_dataset(path: Path) -> Path:
    """DATA_LINES rows of ms-swift's messages format, about 10 MB."""
    row = json.dumps({"messages": [{"role": "user", "content": "What is the capital of France?"},
                                   {"role": "assistant", "content": "Paris."}]})
    path.write_text((row + "\n") * DATA_LINES)
    return path


def lorakit_cmd() -> List[str]:
    """The console script users run, next to this Python; else `python -m lorakit`."""
    script = Path(sys.executable).parent / "lorakit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lorakit"]


def once(argv: Sequence[str], env: Dict[str, str], cwd: str) -> tuple:
    """(seconds, max RSS in KiB, exit code) of one run; output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, proc.returncode


def measure(commands: Dict[str, tuple], runs: int, cwd: str) -> Dict[str, dict]:
    """Run each (argv, expected exit code, env) `runs` times, interleaved; medians per name.

    One untimed round first: it writes the bytecode caches (see main) and warms the disk cache.
    """
    got: Dict[str, list] = {name: [] for name in commands}
    names = list(commands)
    for argv, _, env in commands.values():
        once(argv, env, cwd)
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            argv, expected, env = commands[name]
            seconds, rss, code = once(argv, env, cwd)
            if not (code == expected or (expected == "nonzero" and code != 0)):
                sys.exit(f"bench: {name}: exit code {code}, expected {expected}: {' '.join(argv)}")
            got[name].append((seconds, rss))
    return {name: {"seconds": statistics.median(s for s, _ in v), "rss_kib": statistics.median(m for _, m in v),
                   "runs": len(v)} for name, v in got.items()}


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {cores} cores available; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}; load average at start "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def fake_swift(bin_dir: Path) -> Path:
    """A `swift` that exits at once: what is left is lorakit's own cost."""
    path = bin_dir / "swift"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def tiny_swift_job(work: Path, env: Dict[str, str]) -> Optional[tuple]:
    """(lorakit validate argv, swift sft argv) for the same job on the tiny model; None without swift."""
    if shutil.which("swift", path=env["PATH"]) is None:
        return None
    make = ("import sys; from pathlib import Path; from lorakit.tiny import make_tiny_model, make_tiny_dataset;"
            "w = Path(sys.argv[1]); make_tiny_model(w / 'model'); make_tiny_dataset(w / 'data.jsonl', n=8)")
    subprocess.run([sys.executable, "-c", make, str(work)], check=True, env=env, capture_output=True)
    from lorakit.tiny import tiny_swift_args

    opts = ["-p", "single", "--model", str(work / "model"), "--dataset", str(work / "data.jsonl"),
            "--output-dir", str(work / "out")]
    opts += [x for k, v in tiny_swift_args().items() for x in ("--set", f"{k}={v}")]
    rendered = subprocess.run(lorakit_cmd() + ["train", *opts, "--dry-run"], env=env, check=True,
                              capture_output=True, text=True).stdout
    swift = ["bash", "-c", rendered.rstrip() + " \\\n    --lora_rnak 8"]  # exactly what lorakit would run
    return lorakit_cmd() + ["validate", *opts, "--set", "lora_rnak=8"], swift


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if abs(x) < 1 else f"{x:.2f} s"


def delta(x: float) -> str:
    return ("+" if x >= 0 else "-") + ms(abs(x))


def table(res: Dict[str, dict], has_swift: bool, piped: bool) -> str:
    r = {k: v["seconds"] for k, v in res.items()}
    rows = [
        ("`lorakit train --preset zero2 --dry-run` vs `python -c \"import typer, yaml, rich.console\"`",
         ms(r["dry-run"]), ms(r["floor"]), f"{r['dry-run'] / r['floor']:.2f}x", f"<= {TARGET}x"),
    ]
    if has_swift:
        rows.append(("typo `lora_rnak`: `lorakit validate` vs `swift sft ... --lora_rnak 8` until it exits",
                     ms(r["validate-typo"]), ms(r["swift-typo"]),
                     f"{r['validate-typo'] / r['swift-typo']:.3f}x ({r['swift-typo'] / r['validate-typo']:.0f}x faster)",
                     "report"))
    rows.append(("launch: `lorakit train -p single` vs that `swift` directly (a `swift` that exits at once)",
                 ms(r["launch"]), ms(r["swift-direct"]),
                 f"{delta(r['launch'] - r['swift-direct'])} ({delta(r['launch'] - r['dry-run-single'])} vs "
                 f"`lorakit train -p single --dry-run`)",
                 "report"))
    if "dry-run-data" in r:
        rows.append((f"dataset check: `lorakit train -p single --dataset <{DATA_LINES // 1000}k-line .jsonl> "
                     "--dry-run` vs the same with a hub dataset id", ms(r["dry-run-data"]), ms(r["dry-run-hub"]),
                     delta(r["dry-run-data"] - r["dry-run-hub"]), f"<= +{DATA_TARGET * 1000:.0f} ms"))
    if "dry-run-loss-scale" in r:
        rows.append(("loss_scale check: `lorakit train -p single --dry-run -- --loss_scale last_round+ignore_empty_think` "
                     "vs without it", ms(r["dry-run-loss-scale"]), ms(r["dry-run-single"]),
                     delta(r["dry-run-loss-scale"] - r["dry-run-single"]), "report"))
    if "dry-run-loss-type" in r:
        rows.append(("loss_type/task_type checks: `lorakit train -p single --dry-run -- --loss_type infonce "
                     "--task_type embedding` vs without them", ms(r["dry-run-loss-type"]), ms(r["dry-run-single"]),
                     delta(r["dry-run-loss-type"] - r["dry-run-single"]), "report"))
    if piped:
        rows.append(("launch with output piped: `lorakit train -p single --log FILE` vs directly",
                     ms(r["launch-log"]), ms(r["swift-direct"]),
                     delta(r["launch-log"] - r["swift-direct"]), "report"))
    m = {k: v["rss_kib"] / 1024 for k, v in res.items()}
    rows.append(("peak memory (max RSS): the dry-run vs the import floor",
                 f"{m['dry-run']:.1f} MiB", f"{m['floor']:.1f} MiB", f"{m['dry-run'] / m['floor']:.2f}x", "report"))
    lines = ["| measurement | lorakit | baseline | ratio | target |", "|---|---|---|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per fast command (medians)")
    ap.add_argument("--swift-runs", type=int, default=5, help="runs of the ms-swift typo comparison")
    ap.add_argument("--no-swift", action="store_true", help="skip the comparison with real ms-swift")
    ap.add_argument("--json", help="also write the medians here")
    args = ap.parse_args()
    about = machine()
    with tempfile.TemporaryDirectory(prefix="lorakit-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "HOME": str(work), "NO_COLOR": "1"}
        # Measure what users get: Python caching bytecode. With PYTHONDONTWRITEBYTECODE set (this
        # repo's dev shell sets it), every run would recompile lorakit's own modules, which the
        # deps, compiled by pip at install time, never pay. The cache goes to a temp prefix,
        # not into the checkout.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        fake_bin = work / "fake-bin"
        fake_bin.mkdir()
        fake = fake_swift(fake_bin)
        fake_env = {**env, "PATH": f"{fake_bin}{os.pathsep}{env['PATH']}"}
        lk = lorakit_cmd()
        piped = "--log" in subprocess.run(lk + ["train", "--help"], env=env, capture_output=True, text=True).stdout
        fast = {  # all in one group: they share whatever else the machine is doing
            "floor": (FLOOR, 0, env),
            "dry-run": (lk + ["train", "--preset", "zero2", "--dry-run"], 0, env),
            "dry-run-single": (lk + ["train", "-p", "single", "--dry-run"], 0, fake_env),
            "swift-direct": ([str(fake), "sft", "--model", "x"], 0, fake_env),
            "launch": (lk + ["train", "-p", "single"], 0, fake_env),
        }
        data = big_dataset(work / "data-100k.jsonl")
        fast["dry-run-data"] = (lk + ["train", "-p", "single", "--dataset", str(data), "--dry-run"], 0, env)
        fast["dry-run-hub"] = (lk + ["train", "-p", "single", "--dataset", "AI-ModelScope/alpaca-gpt4-data-en",
                                     "--dry-run"], 0, env)
        # the loss-scale registry check (checks/lossscale.py) reads its table only for a job that sets one
        fast["dry-run-loss-scale"] = (lk + ["train", "-p", "single", "--dry-run", "--", "--loss_scale",
                                            "last_round+ignore_empty_think"], 0, fake_env)
        # the loss registry (checks/losstype.py) and the embedding-row check (checks/retrieval.py):
        # imported, and the table read, only for a job that sets loss_type / task_type
        fast["dry-run-loss-type"] = (lk + ["train", "-p", "single", "--dry-run", "--", "--loss_type", "infonce",
                                           "--task_type", "embedding"], 0, fake_env)
        if piped:
            fast["launch-log"] = (lk + ["train", "-p", "single", "--log", str(work / "run.log")], 0, fake_env)
        res = measure(fast, args.runs, tmp)
        jobs = None if args.no_swift else tiny_swift_job(work, env)
        if jobs is not None:
            res.update(measure({"validate-typo": (jobs[0], 2, env), "swift-typo": (jobs[1], "nonzero", env)},
                               args.swift_runs, tmp))
    print(f"Measured on: {about}; medians of {args.runs} runs ({args.swift_runs} for ms-swift), "
          f"interleaved.\n")
    print(table(res, jobs is not None, piped))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": about, "results": res}, indent=2) + "\n")


if __name__ == "__main__":
    main()
