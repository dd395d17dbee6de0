"""`report_to`: the experiment trackers transformers' Trainer starts callbacks for.

Both mistakes surface only when the Trainer is built, after the model and the dataset have
loaded: a name transformers does not know ("ValueError: wandbb is not supported, only azure_ml,
... are supported", transformers integrations/integration_utils.py get_reporting_integration_callbacks)
and a tracker whose package the environment lacks ("RuntimeError: WandbCallback requires wandb to
be installed", the callback's __init__; measured with ms-swift 4.6.0 on CPU: 16 s in, after
'Loading weights'). swanlab is ms-swift's own: it stops while parsing the arguments
(sft_args.py _init_swanlab), sooner but as surely.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.checks.requires import swift_packages
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.values import suggestion

# INTEGRATION_TO_CALLBACK's keys in every transformers that ms-swift 3.x/4.x runs on (trackio and
# kubeflow are 5.x's), with the two words it reads itself (TrainingArguments.__post_init__).
KNOWN = ("azure_ml", "comet_ml", "mlflow", "neptune", "tensorboard", "trackio", "wandb", "codecarbon", "clearml",
         "dagshub", "flyte", "dvclive", "swanlab", "kubeflow", "all", "none")

# tracker -> the distributions (normalised names) any one of which provides the module its
# is_*_available() looks for; trackers not named here are not judged.
PROVIDERS = {"wandb": ("wandb",), "tensorboard": ("tensorboard", "tensorboardx"), "swanlab": ("swanlab",),
             "mlflow": ("mlflow", "mlflow_skinny"), "comet_ml": ("comet_ml",), "clearml": ("clearml",),
             "dvclive": ("dvclive",), "trackio": ("trackio",), "codecarbon": ("codecarbon",),
             "neptune": ("neptune", "neptune_client")}


def _names(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def check_report_to(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf"):
        return []
    names = _names(job.args.get("report_to"))
    out = [about(job, ERROR, "args.report_to.unknown", "args.report_to",
                 f"report_to {name!r} is no tracker transformers knows: the Trainer refuses it when it starts, "
                 "after the model and the dataset have loaded",
                 f"{suggestion(name, KNOWN)}one or more of: {', '.join(KNOWN)}")
           for name in names if name not in KNOWN]
    packages = swift_packages(job, facts) if any(n in PROVIDERS for n in names) else None
    if packages is None:
        return out
    for name in names:
        wanted = PROVIDERS.get(name)
        if wanted and not any(dist in packages for dist in wanted):
            when = ("while it reads the arguments (sft_args.py _init_swanlab)" if name == "swanlab" else
                    "when the Trainer starts, after the model and the dataset have loaded")
            out.append(about(job, ERROR, "env.report_to_missing", "args.report_to",
                             f"report_to {name} needs the {wanted[0]} package, which the environment `swift` runs "
                             f"in lacks: the run would stop {when}",
                             f"pip install {wanted[0]} there, or leave {name} out of report_to (none: the "
                             "console and ms-swift's logging.jsonl only)"))
    return out


CHECKS = [check_report_to]
