"""`lorakit eval`: a trained adapter -> checks -> `swift eval` (evalscope benchmarks).

The adapter goes through `lorakit infer`'s `prepare` (discovery, the base's pre-flight, backends
that take no LoRA, vllm_max_lora_rank): EvalArguments inherits DeployArguments in 3.x and 4.x, and
swift eval serves the model itself before it runs the benchmark. It needs evalscope, which
ms-swift imports only when eval starts (pipelines/eval/eval.py): said before the launch.
"""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from lorakit import report
from lorakit.checks.facts import Facts
from lorakit.cli import common as c
from lorakit.cli.infer import AdaptersOpt, BackendOpt, DryOpt, FormatOpt, ModelOpt, PickOpt, finish, fragment, prepare
from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.values import listed

EXAMPLES = """
Examples:

  lorakit eval --adapters output --dry-run

  lorakit eval --adapters output --eval-dataset gsm8k --eval-dataset arc -- --eval_limit 100

  lorakit eval --adapters output --infer-backend vllm
"""

DatasetsOpt = Annotated[Optional[List[str]], typer.Option(
    "--eval-dataset", help="An evalscope benchmark (gsm8k, arc, mmlu, ...); repeat for several (replaces the preset's).")]


def eval_(
    ctx: typer.Context,
    adapters: AdaptersOpt = None,
    model: ModelOpt = None,
    eval_dataset: DatasetsOpt = None,
    infer_backend: BackendOpt = None,
    pick: PickOpt = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="An eval preset (default: built-in fragments/eval).")] = None,
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: DryOpt = False,
    fmt: FormatOpt = None,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
) -> int:
    """Benchmark a trained adapter with `swift eval`; flags after `--` go to ms-swift."""
    # each --eval-dataset is one name as typed: joined into a --set YAML list, 'a, b' became two
    # benchmarks and 'gsm8k]' an error about a --set the user never wrote
    if any(not d.strip() for d in eval_dataset or []):
        raise LorakitError("--eval-dataset '' names no benchmark", hint="e.g. --eval-dataset gsm8k --eval-dataset arc")
    more = [("args.eval_dataset", list(eval_dataset), "--eval-dataset")] if eval_dataset else []
    opts = c.JobOptions(preset or fragment("eval"), model=model, sets=list(set_ or []), extra=list(ctx.args),
                        swift_version=swift_version)
    job = prepare(opts, list(adapters or []), pick, command="eval", backend=infer_backend, named=True, more=more)
    if not dry_run and not Facts().has_module("evalscope"):
        raise EnvironmentProblem("swift eval needs evalscope, which is not installed in this environment",
                                 hint="pip install 'evalscope[opencompass]' (or 'ms-swift[eval]')")
    report.note("benchmarks: " + " ".join(listed(job.args.get("eval_dataset"))))  # a bare flag: True
    return finish(job, dry=dry_run, fmt=fmt, strict=strict, grace=grace)


eval_.__doc__ = (eval_.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
