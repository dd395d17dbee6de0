"""Every lorakit error that says ms-swift (or transformers, peft, torchrun under it) would fail,
against the real thing: `lorakit validate` exits 2 with that finding, and the same flags given to
the installed ms-swift fail with the text asserted here. On CPU, on lorakit.tiny's model.

All 4.x cases run in ONE process that imports ms-swift once (tests/real_failures_harness.py calls
the `sft_main` that swift/cli/sft.py calls, per case); the 3.x cases in one more, under
$LORAKIT_SWIFT3_PYTHON. What needs several GPUs, torchrun ranks or DeepSpeed (not installed here)
is cited instead: the ms-swift / torch / accelerate source line, asserted to still be there.

Where ms-swift does NOT fail (case.runs says what it does: four of lorakit's errors were such
false alarms until these runs), lorakit must only warn: the run is asserted to work and lorakit
to exit 0; a finding that still refuses it is a strict xfail naming it, until the check is
fixed. If ms-swift is missing these FAIL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, swift3_python
from test_real_swift import swift_env

pytestmark = pytest.mark.real
HARNESS = Path(__file__).resolve().parent / "real_failures_harness.py"


def site4() -> Path:
    """site-packages of this Python's ms-swift 4.x (found, not imported)."""
    spec = importlib.util.find_spec("swift")
    assert spec is not None, "ms-swift is not installed: run scripts/test.sh"
    return Path(spec.origin).parents[1]


@dataclass(frozen=True)
class Case:
    id: str
    code: str  # lorakit's finding
    key: str
    flags: tuple  # after `--` for lorakit; appended to lorakit's rendered argv for ms-swift
    swift: str  # regex on how ms-swift ended ("ExcType: message [at file:line]")
    version: str = "4.6"
    drop: tuple = ()  # base flags neither gets (lorakit: --set KEY=null)
    # where ms-swift does NOT fail: what it does instead; lorakit must then warn (this code), not refuse
    runs: str = ""
    warns: str = ""  # the warning lorakit gives such a run instead, when not `code`
    said: str = "warning"  # the level of that finding ("info"), or "none": a valid run lorakit must pass quietly
    refused_by: str = ""  # a finding that still refuses such a run (a false alarm: strict xfail)
    call: str = ""  # instead of `swift sft`: this ms-swift function on the flag's value
    missed: str = ""  # lorakit has no finding for it yet (code ""): a strict xfail until one refuses it
    # where ms-swift runs (`runs`) but not as written, and no one means what it does: lorakit refuses it anyway
    meant: str = ""
    # ms-swift fails the flags as written, lorakit changes them (its `code` an info finding) and
    # lorakit's own rendering, run by the same harness as ID+lorakit, trains
    fixes: bool = False


TRAINED = r"^ok$"  # the run finished
# an embedding / reranker run on rows ms-swift drops, each followed by --dataset FILE
EMBED = ("--task_type", "embedding", "--loss_type", "infonce", "--dataset")
RERANK = ("--task_type", "generative_reranker", "--loss_type", "listwise_reranker", "--dataset")
ALL_DROPPED = r"^TypeError: 'NoneType' object is not iterable \[at .*swift/pipelines/train/sft.py"  # 4.6.0: no row left
ROOT = "{root}"  # the fixture's directory, filled in per run

CASES = [
    Case("unknown", "flags.unknown", "args.lora_rnak", ("--lora_rnak", "8"),
         r"^ValueError: remaining_argv: \['--lora_rnak', '8'\] \[at .*swift/pipelines/base.py:40\]"),
    Case("ambiguous", "flags.ambiguous", "args.torc", ("--torc", "float32"),
         r"^SystemExit: 2: .*error: ambiguous option: --torc could match --torch_compile, --torch-compile"),
    Case("not-an-int", "flags.value", "args.lora_rank", ("--lora_rank", "eight"),
         r"^SystemExit: 2: .*error: argument --lora_rank/--lora-rank: invalid int value: 'eight'$"),
    Case("no-value", "flags.value", "args.lora_dropout", ("--lora_dropout",),
         r"^SystemExit: 2: .*error: argument --lora_dropout/--lora-dropout: expected one argument$"),
    Case("targets-none-match", "model.targets.unknown", "args.target_modules", ("--target_modules", "foo_proj"),
         r"^ValueError: Target modules \{'foo_proj'\} not found in the base model\. .*peft/tuners/tuners_utils.py"),
    Case("targets-one-matches", "model.targets.unknown", "args.target_modules",
         ("--target_modules", "q_proj", "foo_proj"), TRAINED,
         runs="ms-swift trains: peft raises 'Target modules ... not found' only when NO target matches "
              "(peft/tuners/tuners_utils.py, `if not self.targeted_module_names`); foo_proj is ignored "
              "and q_proj gets LoRA", warns="model.targets.unmatched"),
    Case("model-type", "model.type.invalid", "args.model_type", ("--model_type", "qwen2_gt"),
         r"^ValueError: model_type: 'qwen2_gt' not in \['"),
    Case("template", "model.template.invalid", "args.template", ("--template", "qwen25"),
         r"^ValueError: template_type: 'qwen25' not in \['"),
    Case("template-ambiguous", "model.template.ambiguous", "args.model_type", (),
         r"^ValueError: Failed to automatically match `template_type`", drop=("template",)),
    Case("type-ambiguous", "model.type.ambiguous", "args.model", (),
         r"^ValueError: Failed to automatically match `model_type`", drop=("model_type", "template")),
    Case("output-in-proc", "paths.output_dir.unwritable", "args.output_dir", ("--output_dir", "/proc/nope"),
         r"^FileNotFoundError: \[Errno 2\] No such file or directory: '/proc/nope'"),
    Case("output-is-a-file", "paths.output_dir.unwritable", "args.output_dir",
         ("--output_dir", f"{ROOT}/one.jsonl"),
         r"^NotADirectoryError: \[Errno 20\] Not a directory: '.*/one.jsonl/v0-"),
    Case("model-missing", "paths.model.missing", "args.model", ("--model", f"{ROOT}/m4/tiny-random-chatm"),
         r"^ValueError: path: '.*/tiny-random-chatm' not found \[at .*swift/utils/hub_utils.py"),
    Case("resume-missing", "paths.resume_from_checkpoint.missing", "args.resume_from_checkpoint",
         ("--resume_from_checkpoint", f"{ROOT}/out/v0/checkpoint-9"),
         r"^FileNotFoundError: path: '.*/out/v0/checkpoint-9'"),
    Case("adapters-missing", "paths.adapters.missing", "args.adapters", ("--adapters", f"{ROOT}/nope-adapter"),
         r"^ValueError: path: '.*/nope-adapter' not found \[at .*swift/utils/hub_utils.py"),
    Case("dataset-info-missing", "paths.custom_dataset_info.missing", "args.custom_dataset_info",
         ("--custom_dataset_info", f"{ROOT}/nope-info.json"),
         r"^JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)"),  # not a file: parsed as JSON text
    Case("cached-dataset-missing", "paths.cached_dataset.missing", "args.cached_dataset",
         ("--cached_dataset", f"{ROOT}/nope-cache"),
         r"^FileNotFoundError: Directory .*/nope-cache not found \[at .*datasets/load.py"),
    Case("train-batch-0", "batch.invalid", "args.per_device_train_batch_size",
         ("--per_device_train_batch_size", "0"), r"^ZeroDivisionError: integer division or modulo by zero",
         drop=("global_batch_size",)),
    Case("grad-accum-0", "batch.invalid", "args.gradient_accumulation_steps", ("--gradient_accumulation_steps", "0"),
         r"^ZeroDivisionError: integer division or modulo by zero \[at .*transformers/trainer.py"),
    Case("eval-batch-0-no-eval", "batch.invalid", "args.per_device_eval_batch_size",
         ("--per_device_eval_batch_size", "0"), TRAINED,
         runs="ms-swift trains: with no evaluation (split_dataset_ratio 0, no val_dataset) the eval batch "
              "size is never used"),
    Case("sample-not-int", "data.sample.invalid", "args.dataset", ("--dataset", f"{ROOT}/data.jsonl#abc"),
         r"^ValueError: invalid literal for int\(\) with base 10: 'abc' \[at .*swift/dataset/dataset_syntax.py"),
    Case("sample-0", "data.sample.invalid", "args.dataset", ("--dataset", f"{ROOT}/data.jsonl#0"),
         r"^AssertionError:  \[at .*swift/dataset/dataset_meta.py:130\]"),  # assert dataset_sample > 0
    # what a file holds (written by `started`): lorakit reads a prefix, datasets' loaders stop on it
    Case("file-empty", "data.file.empty", "args.dataset", ("--dataset", f"{ROOT}/empty.jsonl"),
         r"^StopIteration:  \[at .*datasets/packaged_modules/json/json.py"),
    Case("json-invalid", "data.json.invalid", "args.dataset", ("--dataset", f"{ROOT}/badjson.jsonl"),
         r"^DatasetGenerationError: An error occurred while generating the dataset"),
    Case("row-not-object", "data.row.not_object", "args.dataset", ("--dataset", f"{ROOT}/notobj.jsonl"),
         r"^TypeError: 'int' object is not a mapping \[at .*datasets/utils/json.py"),
    Case("csv-fields", "data.csv.fields", "args.dataset", ("--dataset", f"{ROOT}/bad.csv"),
         r"^DatasetGenerationError: An error occurred while generating the dataset"),
    # every row dropped: sample_dataset divides by the rows left (swift/dataset/utils.py:37)
    Case("format-unknown", "data.format.unknown", "args.dataset", ("--dataset", f"{ROOT}/unknownfmt.jsonl"),
         r"^ZeroDivisionError: integer division or modulo by zero \[at .*swift/dataset/utils.py:37\]"),
    # a text model's template drops the row with the missing image; no row left to encode
    Case("media-missing", "data.media.missing", "args.dataset", ("--dataset", f"{ROOT}/media.jsonl"),
         r"^TypeError: 'NoneType' object is not iterable \[at .*swift/pipelines/train/sft.py:288\]"),
    Case("dataset-missing", "data.path.missing", "args.dataset", ("--dataset", f"{ROOT}/nope.jsonl"),
         r"^ValueError: The local path does not exist, dataset_id: `.*/nope.jsonl`"),
    # trackers: transformers builds their callbacks with the Trainer, after the model and data load
    Case("report-to-unknown", "args.report_to.unknown", "args.report_to", ("--report_to", "tensorbaord"),
         r"^ValueError: tensorbaord is not supported, only azure_ml, comet_ml, mlflow, .* are supported\. "
         r"\[at .*transformers/integrations/integration_utils.py"),
    Case("report-to-missing", "env.report_to_missing", "args.report_to", ("--report_to", "wandb"),
         r"^RuntimeError: WandbCallback requires wandb to be installed\. Run `pip install wandb`\."),
    Case("report-to-swanlab-missing", "env.report_to_missing", "args.report_to", ("--report_to", "swanlab"),
         r"^ValueError: You are using swanlab as `report_to`, please install swanlab by `pip install swanlab`"),
    Case("val-sample-exceeds", "data.sample.exceeds", "args.val_dataset", ("--val_dataset", f"{ROOT}/data.jsonl#20"),
         r"^AssertionError: val_sample: 20, len\(val_dataset\): 8"),
    Case("split-leaves-none", "data.split.empty", "args.dataset",
         ("--dataset", f"{ROOT}/one.jsonl", "--split_dataset_ratio", "0.5"),
         r"^AssertionError:  \[at .*swift/dataset/dataset_meta.py:165\]"),  # assert train_sample > 0
    Case("best-without-eval", "eval.best_without_eval", "args.load_best_model_at_end",
         ("--load_best_model_at_end", "true"),
         r"^ValueError: --load_best_model_at_end requires the save and eval strategy to match"),
    Case("best-strategies", "eval.best_strategies", "args.load_best_model_at_end",
         ("--load_best_model_at_end", "true", "--split_dataset_ratio", "0.25", "--save_strategy", "epoch",
          "--eval_strategy", "steps"),
         r"^ValueError: --load_best_model_at_end requires the save and eval strategy to match"),
    Case("best-steps", "eval.best_steps", "args.save_steps",
         ("--load_best_model_at_end", "true", "--split_dataset_ratio", "0.25", "--save_steps", "3",
          "--eval_steps", "2"),
         r"^ValueError: --load_best_model_at_end requires the saving steps to be a round multiple of the evaluation "
         r"steps, but found 3, which is not a round multiple of 2\."),
    # The best checkpoint is the first one (loss lower but greater_is_better), so save_total_limit 1
    # would have to delete it: exactly what the finding fears.
    Case("best-limit-1", "eval.best_limit", "args.save_total_limit",
         ("--load_best_model_at_end", "true", "--split_dataset_ratio", "0.25", "--save_steps", "1", "--eval_steps", "1",
          "--save_total_limit", "1", "--max_steps", "2", "--metric_for_best_model", "loss", "--greater_is_better",
          "true", "--learning_rate", "1e-2"), TRAINED,
         runs="ms-swift trains 2 steps and loads the best checkpoint at the end: its _rotate_checkpoints "
              "keeps 2 when save_total_limit is 1 and the best is not the newest "
              "(swift/trainers/mixin.py:497-500, as transformers does)"),
    Case("max-length-0", "train.max_length", "args.max_length", ("--max_length", "0"),
         r"^TypeError: 'NoneType' object is not iterable \[at .*swift/pipelines/train/sft.py:288\]"),
    Case("lora-rank-0", "lora.rank.invalid", "args.lora_rank", ("--lora_rank", "0"),
         r"^ValueError: `r` should be a positive integer value but the value passed is 0"),
    # DeepSpeed is not installed here (sft_args.py:254 require_version first), so these call the
    # function _init_deepspeed hands the value to (sft_args.py:270 json_parse_to_dict).
    Case("deepspeed-missing-file", "layout.deepspeed.invalid", "args.deepspeed", ("--deepspeed", f"{ROOT}/nope.json"),
         r"^JSONDecodeError: Expecting value: line 1 column 1", call="swift.utils:json_parse_to_dict"),
    Case("deepspeed-not-a-preset", "layout.deepspeed.invalid", "args.deepspeed", ("--deepspeed", "zero9"),
         r"^JSONDecodeError: Expecting value: line 1 column 1", call="swift.utils:json_parse_to_dict"),
    Case("deepspeed-json-unclosed", "flags.value", "args.deepspeed",
         ("--deepspeed", '{"zero_optimization": {"stage": 2}'), r"^ok: \{'zero_optimization': \{'stage': 2\}\}$",
         call="swift.utils:json_parse_to_dict",
         runs="ms-swift repairs it: json_parse_to_dict (swift/utils/utils.py:500-510) runs json_repair "
              "on JSON that does not parse and gets {'zero_optimization': {'stage': 2}}"),
    # --columns in a form no JSON reader takes (#5044): json_repair makes '' of it (data_args.py:128)
    Case("columns-not-json", "flags.value", "args.columns", ("--columns", "old_name:new_name"),
         r"^JSONDecodeError: Expecting value: line 1 column 1", call="swift.utils:json_parse_to_dict"),
    # ms-swift refuses it only after loading the model (swift/pipelines/train/tuner.py:350)
    Case("tuner-type-typo", "lora.tuner.unknown", "args.tuner_type", ("--tuner_type", "lorra"),
         r"^ValueError: Unknown tuner_type: lorra \[at .*swift/pipelines/train/tuner.py:350\]"),
    # features that need a partner setting (lorakit.checks.features, datasetinfo)
    Case("packing-eager", "args.packing.attn_impl", "args.packing", ("--packing", "true", "--attn_impl", "eager"),
         r'^ValueError: The "packing" feature requires a flash attention implementation\. .*swift/arguments/'
         r'sft_args.py:196'),
    Case("padding-free-unset", "args.packing.attn_impl", "args.padding_free", ("--padding_free", "true"),
         r'^ValueError: The "padding_free" feature requires a flash attention implementation'),
    Case("streaming-no-max-steps", "train.streaming.max_steps", "args.streaming", ("--streaming", "true"),
         r"^ValueError: The train_dataset does not implement __len__, .*max_steps has to be specified\. .*"
         r"transformers/trainer.py",
         drop=("max_steps",)),
    Case("quant-method-no-bits", "args.quant_bits.missing", "args.quant_method", ("--quant_method", "bnb"),
         r"^ValueError: Please set the quant_bits\. args\.quant_bits: None"),
    Case("quant-bnb-2-bits", "args.quant_bits.unsupported", "args.quant_bits",
         ("--quant_method", "bnb", "--quant_bits", "2"), r"^ValueError: bnb not support quant_bits: 2"),
    Case("quant-bits-no-method", "args.quant_bits.no_method", "args.quant_bits", ("--quant_bits", "4"), TRAINED,
         runs="ms-swift trains the model unquantized: get_quantization_config returns None when quant_method "
              "is None (swift/arguments/base_args/quant_args.py:46)",
         meant="quant_bits is asked for to quantize; with no method the run is plain LoRA at full memory (#3129)"),
    Case("dataset-info-mapping", "data.dataset_info.invalid", "args.custom_dataset_info",
         ("--custom_dataset_info", f"{ROOT}/info-mapping.json"),
         r"^TypeError: 'str' object does not support item assignment \[at .*swift/dataset/register.py"),
    Case("dataset-info-unknown-key", "data.dataset_info.invalid", "args.custom_dataset_info",
         ("--custom_dataset_info", f"{ROOT}/info-badkey.json"),
         r"^TypeError: .*unexpected keyword argument 'path'"),
    # the schedule: transformers builds its TrainingArguments while ms-swift parses, and the
    # scheduler function (lr_scheduler_kwargs as its keywords) once training starts
    Case("scheduler-unknown", "train.scheduler.unknown", "args.lr_scheduler_type",
         ("--lr_scheduler_type", "cosine_decay"), r"^ValueError: cosine_decay is not a valid SchedulerType"),
    Case("scheduler-min-lr-missing", "train.scheduler.min_lr", "args.lr_scheduler_type",
         ("--lr_scheduler_type", "cosine_with_min_lr"),
         r"^ValueError: One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs` "
         r"\[at .*transformers/optimization.py"),
    Case("scheduler-min-lr-both", "train.scheduler.min_lr", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1, "min_lr": 1e-6}'),
         r"^ValueError: Only one of min_lr or min_lr_rate should be set"),
    Case("scheduler-kwarg-unknown", "train.scheduler.kwarg_unknown", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}'),
         r"^TypeError: get_cosine_schedule_with_warmup\(\) got an unexpected keyword argument 'min_lr'"),
    Case("scheduler-wsd-no-decay", "train.scheduler.kwarg_missing", "args.lr_scheduler_type",
         ("--lr_scheduler_type", "warmup_stable_decay"),
         r"^TypeError: get_wsd_schedule\(\) missing 1 required positional argument: 'num_decay_steps'"),
    Case("scheduler-plateau-no-eval", "train.scheduler.needs_eval", "args.lr_scheduler_type",
         ("--lr_scheduler_type", "reduce_lr_on_plateau"),
         r"^ValueError: lr_scheduler_type reduce_lr_on_plateau requires an eval strategy"),
    Case("warmup-ratio-2", "train.warmup_ratio", "args.warmup_ratio", ("--warmup_ratio", "2"),
         r"^ValueError: warmup_ratio: 2\.0 must be less than 1\. .*swift/trainers/arguments.py"),
    Case("warmup-ratio-1", "train.warmup_ratio", "args.warmup_ratio", ("--warmup_ratio", "1"),
         r"^ValueError: warmup_ratio: 1\.0 must be less than 1\."),
    Case("warmup-ratio-negative", "train.warmup_ratio", "args.warmup_ratio", ("--warmup_ratio", "-0.1"),
         r"^ValueError: warmup_steps must be an integer or a float \[at .*transformers/training_args.py"),
    Case("warmup-steps-negative", "train.warmup_steps", "args.warmup_steps", ("--warmup_steps", "-1"),
         r"^ValueError: warmup_steps must be an integer or a float", drop=("warmup_ratio",)),
    # nan and inf pass TrainingArguments' own check (transformers 5 reads warmup_steps as a float)
    Case("warmup-steps-nan", "train.warmup_steps", "args.warmup_steps", ("--warmup_steps", "nan"),
         r"^ValueError: cannot convert float NaN to integer \[at .*transformers/training_args.py", drop=("warmup_ratio",)),
    Case("warmup-steps-inf", "train.warmup_steps", "args.warmup_steps", ("--warmup_steps", "inf"),
         r"^OverflowError: cannot convert float infinity to integer", drop=("warmup_ratio",)),
    Case("warmup-both", "train.warmup.both", "args.warmup_steps", ("--warmup_ratio", "0.05", "--warmup_steps", "5"),
         r"^ValueError: `warmup_ratio` and `warmup_steps` cannot be set at the same time\."),
    # the base preset's warmup_ratio 0.05 (built-in single) under the user's own warmup_steps:
    # ms-swift as written fails; lorakit drops the preset's ratio and its rendering trains
    Case("warmup-steps-over-preset", "train.warmup.replaced", "args.warmup_steps", ("--warmup_steps", "2"),
         r"^ValueError: `warmup_ratio` and `warmup_steps` cannot be set at the same time\.", fixes=True),
    Case("lazy-tokenize-packing", "args.lazy_tokenize.incompatible", "args.lazy_tokenize",
         ("--lazy_tokenize", "true", "--packing", "true", "--attn_impl", "flash_attn"),
         r"^ValueError: Packing and lazy_tokenize are incompatible\. \[at .*swift/arguments/base_args/base_args.py"),
    Case("lazy-tokenize-streaming", "args.lazy_tokenize.incompatible", "args.lazy_tokenize",
         ("--lazy_tokenize", "true", "--streaming", "true"), r"^ValueError: Streaming and lazy_tokenize are incompatible\."),
    Case("system-file-is-a-dir", "paths.system.missing", "args.system", ("--system", f"{ROOT}/prompts.txt"),
         r"^AssertionError: self.system: .*/prompts.txt \[at .*template_args.py"),
    Case("system-file-missing", "paths.system.missing", "args.system", ("--system", f"{ROOT}/nope-system.txt"),
         r"^AssertionError: self.system: .*/nope-system.txt \[at .*swift/arguments/base_args/template_args.py"),
    Case("plugin-missing", "paths.external_plugins.missing", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/nope_plugin.py"),
         r"^FileNotFoundError: \[Errno 2\] No such file or directory: '.*/nope_plugin.py'"),
    Case("plugin-package-dir", "paths.custom_register_path.not_module", "args.custom_register_path",
         ("--custom_register_path", f"{ROOT}/plugpkg"), r"^ImportError: Cannot import external file: .*/plugpkg"),
    Case("plugin-not-py", "paths.external_plugins.not_module", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/plug.txt"), r"^ImportError: Cannot import external file: .*/plug.txt"),
    Case("plugin-spaces", "paths.external_plugins.missing", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/plugok.py "), r"^ImportError: Cannot import external file: .*/plugok.py "),
    Case("plugin-dir-missing", "paths.external_plugins.missing", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/nodir/plugin.py"), r"^AssertionError: py_dir: .*/nodir \[at .*swift/utils/utils.py"),
    Case("register-path-missing", "paths.custom_register_path.missing", "args.custom_register_path",
         ("--custom_register_path", f"{ROOT}/nope_register.py"),
         r"^FileNotFoundError: \[Errno 2\] No such file or directory: '.*/nope_register.py'"),
    # values transformers, torch or numpy check only once ms-swift runs (checks/trainargs.py, attention.py)
    Case("seed-negative", "train.seed", "args.seed", ("--seed", "-1"),
         r"^ValueError: Seed must be between 0 and 2\*\*32 - 1"),
    Case("logging-steps-0", "train.logging_steps", "args.logging_steps", ("--logging_steps", "0"),
         r"^ValueError: logging strategy IntervalStrategy.STEPS requires non-zero --logging_steps"),
    Case("optimizer-unknown", "train.optimizer.unknown", "args.optimizer", ("--optimizer", "galor"),
         r"^KeyError: 'galor' \[at .*swift/trainers/mixin.py"),
    Case("adam-beta", "train.adam", "args.adam_beta1", ("--adam_beta1", "1.5"),
         r"^ValueError: Invalid beta parameter at index 0: 1.5 \[at .*torch/optim/adam"),
    Case("attn-impl-unknown", "model.attn_impl.unknown", "args.attn_impl", ("--attn_impl", "flash_attention2"),
         r'^ValueError: Specified `attn_implementation="flash_attention2"` is not supported'),
    # the hostile review's F21, F20, F14, F4 and (3.x) F3
    Case("scheduler-default-kwarg-unknown", "train.scheduler.kwarg_unknown", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_kwargs", '{"min_lr": 1e-6}'),
         r"^TypeError: get_cosine_schedule_with_warmup\(\) got an unexpected keyword argument 'min_lr'"),
    Case("scheduler-min-lr-text", "train.scheduler.kwarg_type", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": "1e-6"}'),
         r"^TypeError: unsupported operand type\(s\) for /: 'str' and 'float'"),
    Case("scheduler-min-lr-rate-text", "train.scheduler.kwarg_type", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr_rate": "0.1"}'),
         r"^TypeError: unsupported operand type\(s\) for -: 'int' and 'str'"),
    Case("scheduler-min-lr-null", "train.scheduler.min_lr", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": null}'),
         r"^ValueError: One of min_lr or min_lr_rate should be set"),
    Case("scheduler-min-lr-null-and-rate", "train.scheduler.min_lr", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": null, "min_lr_rate": 0.1}'),
         TRAINED, runs="a null min_lr is no min_lr to transformers", said="none"),
    # what lorakit renders for YAML `lr_scheduler_kwargs: {min_lr: 1e-6}` (yamlload.Number)
    Case("scheduler-min-lr-yaml-number", "train.scheduler.kwarg_type", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": 1e-06}'),
         TRAINED, runs="a number, as YAML 1.2 reads 1e-6", said="none"),
    Case("scheduler-inverse-sqrt-kwarg", "train.scheduler.kwarg_unknown", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "inverse_sqrt", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}'),
         r"^TypeError: get_inverse_sqrt_schedule\(\) got an unexpected keyword argument 'min_lr'"),
    Case("scheduler-greedy", "train.scheduler.unknown", "args.lr_scheduler_type",
         ("--lr_scheduler_type", "greedy", "--split_dataset_ratio", "0.25", "--eval_strategy", "steps",
          "--eval_steps", "1"), TRAINED, runs="transformers 5 has greedy", said="none"),
    Case("v3-scheduler-greedy", "train.scheduler.unknown", "args.lr_scheduler_type",
         ("--lr_scheduler_type", "greedy", "--split_dataset_ratio", "0.25", "--eval_strategy", "steps",
          "--eval_steps", "1"), r"^ValueError: greedy is not a valid SchedulerType", version="3.12"),
    Case("v3-scheduler-default-kwarg-unknown", "train.scheduler.kwarg_unknown", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_kwargs", '{"min_lr": 1e-6}'),
         r"^TypeError: get_cosine_schedule_with_warmup\(\) got an unexpected keyword argument 'min_lr'",
         version="3.12"),
    Case("v3-scheduler-inverse-sqrt-kwarg", "train.scheduler.kwargs_ignored", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "inverse_sqrt", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}'), TRAINED,
         version="3.12", runs="transformers 4.57 builds inverse_sqrt without the kwargs", said="info"),
    Case("scheduler-kwargs-not-json", "flags.value", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", "min_lr=1e-6"),
         r"^JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)"),
    Case("v3-optimizer-unknown", "train.optimizer.unknown", "args.optimizer", ("--optimizer", "galor"),
         r"^KeyError: 'galor' \[at .*swift/trainers/mixin.py", version="3.12"),
    Case("v3-attn-impl-unknown", "model.attn_impl.unknown", "args.attn_impl", ("--attn_impl", "flash_attention2"),
         r'^ValueError: Specified `attn_implementation="flash_attention2"` is not supported', version="3.12"),
    # on 3.x: transformers 4.57 range-checks the ratio itself, lets warmup_steps win over the ratio
    Case("v3-warmup-ratio-2", "train.warmup_ratio", "args.warmup_ratio", ("--warmup_ratio", "2"),
         r"^ValueError: warmup_ratio must lie in range \[0,1\]", version="3.12"),
    Case("v3-warmup-both", "train.warmup.both", "args.warmup_steps", ("--warmup_ratio", "0.05", "--warmup_steps", "1"),
         TRAINED, version="3.12", runs="ms-swift 3.12.6 trains: transformers 4.57 uses warmup_steps and ignores "
                                       "the ratio (training_args.py get_warmup_steps)"),
    Case("v3-lazy-tokenize-packing", "args.lazy_tokenize.incompatible", "args.lazy_tokenize",
         ("--lazy_tokenize", "true", "--packing", "true", "--attn_impl", "flash_attn"),
         r"^ValueError: Packing and lazy_tokenize are incompatible\. \[at .*swift/llm/argument/base_args/base_args.py",
         version="3.12"),
    # the hostile review's F9: 3.x imports the name, 4.x the file
    Case("v3-plugin-package", "paths.custom_register_path.not_module", "args.custom_register_path",
         ("--custom_register_path", f"{ROOT}/plugpkg"), TRAINED, version="3.12", said="none",
         runs="3.x imports the package dir by its name"),
    Case("v3-plugin-module-name", "paths.custom_register_path.missing", "args.custom_register_path",
         ("--custom_register_path", "plugpkg"), TRAINED, version="3.12", said="none",
         runs="3.x imports the module plugpkg from the launch directory"),
    Case("v3-plugin-not-py", "paths.external_plugins.not_module", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/plug.txt"), r"^ModuleNotFoundError: No module named 'plug'", version="3.12"),
    Case("v3-plugin-no-suffix", "paths.external_plugins.not_module", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/plugnoext"), r"^ModuleNotFoundError: No module named 'plugnoext'",
         version="3.12"),
    Case("v3-plugin-shadowed", "paths.external_plugins.shadowed", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/shadow/datasets.py"), TRAINED, version="3.12",
         runs="3.x imports the datasets already loaded: the file (which raises) never runs"),
    Case("v3-plugin-missing", "paths.external_plugins.missing", "args.external_plugins",
         ("--external_plugins", f"{ROOT}/nope_plugin.py"), r"^ModuleNotFoundError: No module named 'nope_plugin'",
         version="3.12"),
    Case("v3-scheduler-kwarg-unknown", "train.scheduler.kwarg_unknown", "args.lr_scheduler_kwargs",
         ("--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}'),
         r"^TypeError: get_cosine_schedule_with_warmup\(\) got an unexpected keyword argument 'min_lr'",
         version="3.12"),
    # 3.x only: names 3.12.6 lacks
    Case("v3-4x-name", "flags.unknown", "args.decision_shuffle_fields", ("--decision_shuffle_fields", "true"),
         r"^ValueError: remaining_argv: \['--decision_shuffle_fields', 'true'\] \[at .*swift/llm/base.py:36\]",
         version="3.12"),
    Case("v3-removed", "flags.removed", "args.acc_steps", ("--acc_steps", "2"),
         r"^ValueError: remaining_argv: \['--acc_steps', '2'\]", version="3.12"),
    Case("v3-renamed", "flags.removed", "args.swanlab_lark_secret", ("--swanlab_lark_secret", "x"),
         r"^ValueError: remaining_argv: \['--swanlab_lark_secret', 'x'\]", version="3.12"),
    Case("v3-model-type", "model.type.invalid", "args.model_type", ("--model_type", "qwen3_5"),
         r"^ValueError: model_type: 'qwen3_5' not in \['", version="3.12"),
    # EvalScope benchmarks with no eval_use_evalscope: evaluation stays on with an empty eval set
    Case("eval-dataset-without-evalscope", "eval.benchmarks_off", "args.eval_dataset",
         ("--eval_dataset", "gsm8k", "--eval_steps", "1"),
         r"^KeyError: \"The `metric_for_best_model` training argument is set to 'eval_loss', which is not found"),
    Case("v3-eval-dataset-without-evalscope", "eval.benchmarks_off", "args.eval_dataset",
         ("--eval_dataset", "gsm8k", "--eval_steps", "1"),
         r"^KeyError: \"The `metric_for_best_model` training argument is set to 'eval_loss', which is not found",
         version="3.12"),
    # the sft loss registry (lorakit.losstypes): looked up when the trainer is built
    Case("loss-type-3x-reranker-name", "flags.removed", "args.loss_type", ("--loss_type", "listwise_generative_reranker"),
         r"^KeyError: 'listwise_generative_reranker' \[at .*swift/trainers/mixin.py"),
    Case("v3-loss-type-typo", "flags.value", "args.loss_type", ("--loss_type", "infonse"),
         r"^KeyError: 'infonse'", version="3.12"),
    Case("v3-loss-type-removed", "flags.removed", "args.loss_type", ("--loss_type", "loss_scale"),
         r"^KeyError: 'loss_scale'", version="3.12"),
    Case("v3-loss-type-4x-name", "flags.too_new", "args.loss_type", ("--loss_type", "pointwise_reranker"),
         r"^KeyError: 'pointwise_reranker'", version="3.12"),  # ms-swift #8006: a 4.x example on 3.12
    Case("warmup-whole-run", "train.warmup.whole_run", "args.warmup_steps", ("--warmup_steps", "5", "--max_steps", "2"),
         TRAINED, drop=("warmup_ratio",), runs="it trains, the whole run in warmup (see below)"),
    # embedding / reranker rows (checks/retrieval.py): the documented ones train with no assistant
    # message; ms-swift #4728's {"query", "positive", "negative"} rows are all dropped
    Case("embedding-documented-rows", "data.row.no_response", "args.dataset", (*EMBED, f"{ROOT}/pairs.jsonl"),
         TRAINED, runs="the query in messages, its document in positive_messages", said="none"),
    Case("v3-embedding-documented-rows", "data.row.no_response", "args.dataset", (*EMBED, f"{ROOT}/pairs.jsonl"),
         TRAINED, version="3.12", runs="the query in messages, its document in positive_messages", said="none"),
    Case("reranker-documented-rows", "data.row.no_response", "args.dataset", (*RERANK, f"{ROOT}/pairs.jsonl"),
         TRAINED, runs="the query in messages, its documents in positive/negative_messages", said="none"),
    Case("embedding-rows-without-positive", "data.row.no_positive", "args.dataset",
         (*EMBED, f"{ROOT}/posneg.jsonl"), ALL_DROPPED),
    Case("reranker-rows-without-positive", "data.row.no_positive", "args.dataset",
         (*RERANK, f"{ROOT}/posneg.jsonl"), ALL_DROPPED),
    Case("embedding-documents-as-text", "data.row.no_positive", "args.dataset",
         (*EMBED, f"{ROOT}/pairs-text.jsonl"), ALL_DROPPED),
    Case("embedding-documents-flat", "data.row.no_positive", "args.dataset",
         (*EMBED, f"{ROOT}/pairs-flat.jsonl"), ALL_DROPPED),
    Case("reranker-only-negatives", "data.row.no_positive", "args.dataset", (*RERANK, f"{ROOT}/negatives.jsonl"),
         r"^TypeError: can only join an iterable \[at .*transformers/trainer.py"),
    Case("v3-embedding-rows-without-positive", "data.row.no_positive", "args.dataset",
         (*EMBED, f"{ROOT}/posneg.jsonl"), r"^AssertionError: .*\[at .*swift/llm/dataset/utils.py", version="3.12"),
]


def refused(cases):
    return [pytest.param(c, id=c.id) for c in cases if (not c.runs or c.meant) and not c.missed and not c.fixes]


def let_through(cases):
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(
        strict=True, reason=f"FALSE ALARM: error[{c.refused_by}] refuses it, but {c.runs}")] if c.refused_by else [])
            for c in cases if c.runs and not c.meant]


BASE_ARGS = {"torch_dtype": "float32", "dataloader_num_workers": 0, "max_length": 128, "model_type": "qwen2",
             "template": "qwen", "check_model": False, "max_steps": 1, "split_dataset_ratio": 0,
             "eval_steps": None, "global_batch_size": 1, "use_cpu": True}
# lorakit renders the base command with this hub id standing in for the model, which the harness
# makes only later; the local path then replaces it (render is pure: nothing else depends on it)
STAND_IN = "Qwen/Qwen2.5-0.5B-Instruct"


def model_dir(root: Path, major: int) -> Path:
    return root / f"m{major}" / "tiny-random-chatml"


def write_preset(root: Path, model: str) -> Path:
    preset = root / f"base-{model.replace('/', '_')}.yaml"
    preset.write_text(yaml.safe_dump({"extends": "single", "args": {
        "model": model, "dataset": [str(root / "data.jsonl")], "output_dir": str(root / "out"), **BASE_ARGS}}))
    return preset


def base_argv(root: Path, major: int, extra: list[str] = ()) -> list[str]:
    """lorakit's own rendering of the base preset for `major` (with `extra` flags after `--`), after
    `swift sft`."""
    rendered = run_cli(["train", "-p", str(write_preset(root, STAND_IN)), "--dry-run", "--format", "json",
                        "--swift-version", str(major), "--", *extra])
    assert rendered.code == 0, rendered.stderr
    argv = json.loads(rendered.stdout)["argv"][2:]
    return [str(model_dir(root, major)) if item == STAND_IN else item for item in argv]


def flags(case: Case, root: Path) -> list[str]:
    return [f.replace(ROOT, str(root)) for f in case.flags]


def without(argv: list[str], names) -> list[str]:
    """argv less `--NAME VALUE` for each name (lorakit renders one value for these)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item[2:] in names:
            skip = True
        else:
            out.append(item)
    return out


def start_harness(python: str, major: int, root: Path, env: dict) -> tuple:
    base, cases = base_argv(root, major), {}
    for case in CASES:
        if int(case.version.split(".")[0]) != major:
            continue
        if case.call:
            cases[case.id] = {"call": case.call, "args": flags(case, root)[1:], "cwd": str(root)}
        else:
            argv = [*without(base, case.drop), "--output_dir", str(root / "out" / case.id), *flags(case, root)]
            cases[case.id] = {"argv": argv, "cwd": str(root), "env": {"CUDA_VISIBLE_DEVICES": ""}}
        if case.fixes:
            mine = [*base_argv(root, major, flags(case, root)), "--output_dir", str(root / "out" / f"{case.id}+lorakit")]
            cases[f"{case.id}+lorakit"] = {"argv": mine, "cwd": str(root), "env": {"CUDA_VISIBLE_DEVICES": ""}}
    src, dst, log = (root / f"{name}{major}.{ext}" for name, ext in (("cases", "json"), ("outcomes", "json"),
                                                                       ("harness", "log")))
    src.write_text(json.dumps(cases))
    with open(log, "w") as out:
        process = subprocess.Popen([python, str(HARNESS), str(src), str(dst), str(model_dir(root, major))], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    return process, dst, log


def finish(started: tuple) -> dict:
    process, dst, log = started
    try:
        code = process.wait(timeout=600)
    finally:
        process.kill()
    assert code == 0, log.read_text()[-4000:]
    return json.loads(dst.read_text())


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """Both harnesses at once (the 3.x one has only a few cases: it overlaps the 4.x one)."""
    from lorakit.tiny import make_tiny_dataset  # no torch

    root = tmp_path_factory.mktemp("fail")
    data = make_tiny_dataset(root / "data.jsonl", n=8)
    good = data.read_text().splitlines()[0]
    (root / "one.jsonl").write_text(good + "\n")
    (root / "empty.jsonl").write_text("")
    (root / "plugpkg").mkdir(exist_ok=True)  # a plugin package: 3.x imports it by name, 4.x cannot
    (root / "plugpkg" / "__init__.py").write_text("")
    (root / "plug.txt").write_text("")
    (root / "prompts.txt").mkdir(exist_ok=True)  # a directory named like a prompt file
    (root / "plugok.py").write_text("")
    (root / "plugnoext").write_text("")
    (root / "shadow").mkdir(exist_ok=True)  # 3.x imports it as `datasets`, already loaded: it never runs
    (root / "shadow" / "datasets.py").write_text("raise RuntimeError('the plugin ran')\n")
    (root / "badjson.jsonl").write_text(good + '\n{"messages": [\n')
    (root / "notobj.jsonl").write_text('42\n"text"\n')
    (root / "bad.csv").write_text("query,response\nhi,there\nq,a,extra\n")
    (root / "unknownfmt.jsonl").write_text('{"foo": "bar"}\n{"foo": "baz"}\n')
    pairs = [("what is a cat", "a cat is an animal", "a car"), ("what is rain", "rain is water", "a cat"),
             ("what is a dog", "a dog barks", "snow"), ("what is snow", "snow is cold", "a dog")]
    (root / "pairs.jsonl").write_text("".join(json.dumps({  # the Embedding / Reranker docs' rows
        "messages": [{"role": "user", "content": q}], "positive_messages": [[{"role": "user", "content": p}]],
        "negative_messages": [[{"role": "user", "content": n}]]}) + "\n" for q, p, n in pairs))
    for name, shape in (("pairs-text", lambda p: [p]), ("pairs-flat", lambda p: [{"role": "user", "content": p}])):
        (root / f"{name}.jsonl").write_text("".join(json.dumps({  # documents not written as message lists
            "messages": [{"role": "user", "content": q}], "positive_messages": shape(p)}) + "\n" for q, p, _ in pairs))
    (root / "negatives.jsonl").write_text("".join(json.dumps({  # a reranker's rows with no positive document
        "messages": [{"role": "user", "content": q}], "negative_messages": [[{"role": "assistant", "content": n}]]})
        + "\n" for q, _, n in pairs))
    (root / "posneg.jsonl").write_text("".join(json.dumps(  # ms-swift #4728's rows
        {"query": q, "positive": [p], "negative": [n]}) + "\n" for q, p, n in pairs))
    (root / "info-mapping.json").write_text('{"mine": {"dataset_path": "data.jsonl"}}')  # ms-swift #3754
    (root / "info-badkey.json").write_text('[{"path": "data.jsonl", "dataset_name": "mine"}]')
    (root / "media.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "<image>q"},
                                                               {"role": "assistant", "content": "a"}],
                                                  "images": [str(root / "nope.png")]}) + "\n")
    runs = {4: start_harness(sys.executable, 4, root, swift_env())}
    python3 = os.environ.get("LORAKIT_SWIFT3_PYTHON")
    if python3:
        runs[3] = start_harness(python3, 3, root, dict(swift_env(), PATH=str(Path(python3).parent)))
    yield root, runs
    for process, _, _ in runs.values():
        process.kill()


@pytest.fixture(scope="module")
def outcomes4(started):
    return finish(started[1][4])


@pytest.fixture(scope="module")
def outcomes3(started):
    swift3_python()  # skips, or fails in CI, without a 3.x Python
    return finish(started[1][3])


@pytest.fixture(scope="module")
def tiny(started):
    """(root, preset): the preset names the model the 4.x harness makes first; lorakit's checks
    run while the harness goes on with its cases."""
    root, (process, _, log) = started[0], started[1][4]
    ready = Path(f"{model_dir(root, 4)}.ready")
    while not ready.exists():
        assert process.poll() is None, log.read_text()[-4000:]
        time.sleep(0.2)
    return root, write_preset(root, str(model_dir(root, 4)))


def lorakit_says(case: Case, root: Path, preset: Path, *options: str):
    sets = [x for key in case.drop for x in ("--set", f"{key}=null")]
    return run_cli(["validate", "-p", str(preset), "--swift-version", case.version, *options, *sets, "--",
                    *flags(case, root)])


@pytest.mark.parametrize("case", refused(CASES))
def test_lorakit_refuses_before_launch(case, tiny):
    root, preset = tiny
    said = lorakit_says(case, root, preset)
    assert said.code == 2, said.stderr
    assert re.search(rf"^error\[{re.escape(case.code)}\] {re.escape(case.key)} \(", said.stderr, re.M), said.stderr


@pytest.mark.parametrize("case", let_through(CASES))
def test_lorakit_only_warns_where_ms_swift_runs(case, tiny):
    """These were errors until this module's runs showed ms-swift trains them."""
    root, preset = tiny
    said = lorakit_says(case, root, preset)
    code = case.warns or case.code
    if case.said == "none":
        assert not re.search(rf"^(error|warning)\[[a-z_.]+\] {re.escape(case.key)} \(", said.stderr, re.M), said.stderr
    else:
        assert re.search(rf"^{case.said}\[{re.escape(code)}\] {re.escape(case.key)} \(", said.stderr, re.M), \
            said.stderr
    assert said.code == 0, said.stderr


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.fixes])
def test_lorakit_fixes_what_ms_swift_fails_and_its_rendering_trains(case, tiny, request):
    root, preset = tiny
    said = lorakit_says(case, root, preset)
    assert said.code == 0, said.stderr
    assert re.search(rf"^info\[{re.escape(case.code)}\] {re.escape(case.key)} \(", said.stderr, re.M), said.stderr
    did = request.getfixturevalue("outcomes3" if case.version.startswith("3") else "outcomes4")[f"{case.id}+lorakit"]
    assert re.fullmatch(TRAINED, did), did


def swift_did(case: Case, request) -> str:
    return request.getfixturevalue("outcomes3" if case.version.startswith("3") else "outcomes4")[case.id]


MISSED = [c for c in CASES if c.missed]
if MISSED:  # none today (an empty parameter set would only be a skip)
    @pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(
        strict=True, reason=f"MISS: {c.missed}; ms-swift fails")]) for c in MISSED])
    def test_lorakit_refuses_what_ms_swift_fails_later(case, tiny):
        root, preset = tiny
        said = lorakit_says(case, root, preset)
        assert said.code == 2, said.stderr
        assert re.search(rf"^error\[[a-z_.]+\] {re.escape(case.key)} \(", said.stderr, re.M), said.stderr


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if not c.runs])
def test_ms_swift_fails_the_same_way(case, request):
    did = swift_did(case, request)
    assert not did.startswith("ok"), f"ms-swift did not fail: {did}"
    assert re.search(case.swift, did), did


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.runs])
def test_ms_swift_runs_what_lorakit_only_warns_about(case, request):
    did = swift_did(case, request)
    assert re.search(case.swift, did), did


def test_what_the_runs_lorakit_only_warns_about_leave(started, outcomes4):
    """What the warnings must say: with some targets matching, LoRA goes on those alone; with
    save_total_limit 1 and an older best, training ends well but transformers then deletes every
    checkpoint but the best (trainer.py: "Delete the last checkpoint when save_total_limit=1"),
    so ms-swift's last-checkpoint link points at nothing and the run cannot be resumed from its end."""
    from safetensors import safe_open

    out = started[0] / "out"
    [adapter] = out.glob("targets-one-matches/v*/checkpoint-1/adapter_model.safetensors")
    with safe_open(str(adapter), "pt") as weights:
        layers = {key.split(".")[-3] for key in weights.keys()}
    assert layers == {"q_proj"}, layers
    [run] = out.glob("best-limit-1/v*")
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1"]
    link = run / "last-checkpoint"
    assert link.is_symlink() and str(link.readlink()) == "checkpoint-2" and not link.exists()
    said = json.loads((run / "logging.jsonl").read_text().splitlines()[-1])
    assert said["best_model_checkpoint"] == str(run / "checkpoint-1"), said
    assert said["last_model_checkpoint"] == str(run / "checkpoint-2"), said  # which no longer exists


def test_a_run_no_longer_than_its_warmup_never_trains_at_its_learning_rate(started, outcomes4):
    """warmup-whole-run: 2 steps of a 5-step warmup log learning rates below the one asked for."""
    [log] = (started[0] / "out").glob("warmup-whole-run/v*/logging.jsonl")
    rates = [json.loads(line)["learning_rate"] for line in log.read_text().splitlines()
             if "learning_rate" in json.loads(line)]
    asked = json.loads((log.parent / "args.json").read_text())["learning_rate"]  # what ms-swift was given
    assert rates and max(rates) < asked, (rates, asked)


# Where a run needs several GPUs, torchrun ranks or an older minor: lorakit's finding, a command
# that makes it, and the source line (file:line in the installed package) that fails the run.
# The line is asserted to still be there, so a citation cannot rot silently.


@dataclass(frozen=True)
class Cited:
    id: str
    code: str
    key: str
    options: tuple  # lorakit options before `--`
    flags: tuple
    site: str  # "4": this Python's ms-swift; "3": $LORAKIT_SWIFT3_PYTHON's
    path: str
    line: int
    text: str


CITED = [
    # 2 GPUs for one rank (NPROC_PER_NODE 1): is_mp() is true and _init_deepspeed refuses.
    Cited("deepspeed-on-device-map", "layout.device_map.deepspeed", "args.deepspeed", ("--gpus", "0,1", "--nproc", "1"),
          ("--deepspeed", "zero2"), "4", "swift/arguments/sft_args.py", 256,
          "raise ValueError('DeepSpeed is not compatible with `device_map`. '"),
    # device_map auto on 2 ranks of one GPU each: accelerate's prepare refuses a model spread so.
    Cited("device-map-auto-ddp", "layout.device_map.explicit", "args.device_map", ("--gpus", "0,1", "--nproc", "2"),
          ("--device_map", "auto"), "4", "accelerate/accelerator.py", 1479,
          "\"You can't train a model that has been loaded with `device_map='auto'` in any distributed mode.\""),
    # 4 GPUs, 3 ranks (or 2 GPUs, 4 ranks): ms-swift's is_mp() asserts an even split in every rank.
    Cited("nproc-indivisible", "layout.nproc.indivisible", "launch.nproc_per_node",
          ("--gpus", "0,1,2,3", "--nproc", "3"),
          (), "4", "swift/utils/env.py", 70,
          "assert n_gpu % local_world_size == 0, f'n_gpu: {n_gpu}, local_world_size: {local_world_size}'"),
    Cited("nproc-too-many", "layout.nproc.too_many", "launch.nproc_per_node", ("--gpus", "0,1", "--nproc", "4"),
          (), "4", "swift/utils/env.py", 70,
          "assert n_gpu % local_world_size == 0, f'n_gpu: {n_gpu}, local_world_size: {local_world_size}'"),
    # bnb 4-bit under ZeRO-3 (DeepSpeed is not installed here): ms-swift passes bnb_4bit_quant_storage
    # through as given (None unless set), and ZeRO-3's flat buffer then holds uint8 and bf16 weights
    Cited("bnb4-zero3", "layout.zero3.bnb_storage", "args.deepspeed", (),
          ("--quant_method", "bnb", "--quant_bits", "4", "--deepspeed", "zero3"), "4",
          "swift/arguments/base_args/quant_args.py", 67, "bnb_4bit_quant_storage=self.bnb_4bit_quant_storage,"),
    # a full fine-tune of a bnb-quantized model (bitsandbytes needs CUDA): the Trainer refuses a
    # quantized model that has no adapters, once the model has loaded
    Cited("full-on-quantized", "train.full.quantized", "args.quant_method", (),
          ("--quant_method", "bnb", "--quant_bits", "4", "--tuner_type", "full"), "4", "transformers/trainer_utils.py",
          133, '"You cannot perform fine-tuning on purely quantized models. Please attach trainable adapters on top of"'),
    Cited("v3-full-on-quantized", "train.full.quantized", "args.quant_method", ("--swift-version", "3.12"),
          ("--quant_method", "bnb", "--quant_bits", "4", "--train_type", "full"), "3", "transformers/trainer.py",
          559, '"You cannot perform fine-tuning on purely quantized models. Please attach trainable adapters on top of"'),
    # NPROC_PER_NODE=many: torchrun's determine_local_world_size
    Cited("nproc-not-a-number", "layout.nproc.invalid", "launch.nproc_per_node",
          ("--set", "launch.nproc_per_node=many"), (), "4", "torch/distributed/run.py", 777,
          'f"Unsupported nproc_per_node value: {nproc_per_node}"'),
    # NNODES=two: torchrun's parse_min_max_nnodes
    Cited("nnodes-not-a-number", "nodes.nnodes.invalid", "launch.nnodes", ("--set", "launch.nnodes=two"),
          (), "4", "torch/distributed/run.py", 740,
          "raise RuntimeError(f'nnodes={nnodes} is not in \"MIN:MAX\" format')"),
    # enable_thinking first appears in 3.12 (ms_swift-3.11.3's wheel has no such field: the flag
    # history, scripts/gen_swift_history.py); 3.11 then stops at remaining_argv (v3-4x-name above).
    Cited("too-new-within-3x", "flags.too_new", "args.enable_thinking", ("--swift-version", "3.11"),
          ("--enable_thinking", "true"), "3", "swift/llm/argument/base_args/template_args.py", 136,
          "enable_thinking: Optional[bool] = None"),
    # a model_type that only a later minor registers: 3.x's get_model_info_meta refuses it
    # (the same raise as v3-model-type above, which runs it); ms-swift #3004 is qwen2_5_vl on 3.0.3.
    Cited("model-type-too-new", "model.type.too_new", "args.model_type", ("--swift-version", "3.0"),
          ("--model_type", "qwen2_5_vl"), "3", "swift/llm/model/register.py", 622,
          "raise ValueError(f\"model_type: '{model_type}' not in {list(MODEL_MAPPING.keys())}\")"),
]


def site(which: str) -> Path:
    if which == "4":
        return site4()
    find = "import importlib.util; print(importlib.util.find_spec('swift').origin)"
    where = subprocess.run([swift3_python(), "-c", find], capture_output=True, text=True, check=True,
                           timeout=60).stdout.strip()
    return Path(where).parents[1]


@pytest.mark.parametrize("cited", [pytest.param(c, id=c.id) for c in CITED])
def test_lorakit_refuses_what_the_cited_line_fails(cited, tiny):
    root, preset = tiny
    options = cited.options if "--swift-version" in cited.options else ("--swift-version", "4.6", *cited.options)
    said = run_cli(["validate", "-p", str(preset), *options, "--", *cited.flags])
    assert said.code == 2, said.stderr
    assert re.search(rf"^error\[{re.escape(cited.code)}\] {re.escape(cited.key)} \(", said.stderr, re.M), said.stderr
    lines = (site(cited.site) / cited.path).read_text(encoding="utf-8").splitlines()
    if cited.path.startswith("swift/"):  # ms-swift is pinned (4.6.0): its line stays where it is
        assert cited.text in lines[cited.line - 1], (cited.path, cited.line, lines[cited.line - 1])
    else:  # an unpinned dependency (accelerate 1.16.0 moved this one from 1479 to 1439): the text must remain
        assert any(cited.text in line for line in lines), (cited.path, cited.text)


def test_ddp_reentrant_cites_torch_reducer(tiny):
    """DDP + reentrant checkpointing: ms-swift keeps a use_reentrant the user gives
    (swift/trainers/mixin.py:946) and torch's C++ reducer then raises, in every rank's first
    backward; its message is compiled into libtorch_cpu.so (torch/csrc/distributed/c10d/reducer.cpp).
    Seen once for real, too slow for this module (~70 s here): `NPROC_PER_NODE=2 swift sft` on the
    tiny model with --use_cpu true --gradient_checkpointing true --gradient_checkpointing_kwargs
    '{"use_reentrant": true}' stops in both ranks with "RuntimeError: Expected to mark a variable
    ready only once" (ms-swift 4.6.0, torch gloo)."""
    root, preset = tiny
    said = run_cli(["validate", "-p", str(preset), "--swift-version", "4.6", "--gpus", "0,1", "--nproc", "2", "--",
                    "--gradient_checkpointing", "true", "--gradient_checkpointing_kwargs", '{"use_reentrant": true}'])
    assert said.code == 2, said.stderr
    assert re.search(r"^error\[layout\.ddp\.reentrant\] args\.gradient_checkpointing_kwargs \(", said.stderr, re.M)
    lines = (site4() / "swift/trainers/mixin.py").read_text().splitlines()
    assert lines[945].strip() == "use_reentrant_ = args.gradient_checkpointing_kwargs.get('use_reentrant')"
    import mmap

    with open(site4() / "torch/lib/libtorch_cpu.so", "rb") as lib, \
            mmap.mmap(lib.fileno(), 0, access=mmap.ACCESS_READ) as blob:
        assert blob.find(b"Expected to mark a variable ready only once") >= 0


def test_busy_master_port_fails_torchrun_as_ms_swift_starts_it(tiny):
    """A real torchrun (what swift/cli/main.py starts for NPROC_PER_NODE) on a port in use here."""
    root, preset = tiny
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        said = run_cli(["validate", "-p", str(preset), "--swift-version", "4.6", "--nproc", "1",
                        "--set", f"launch.master_port={port}"])
        assert said.code == 2, said.stderr
        assert re.search(r"^error\[nodes\.master_port\.busy\] launch\.master_port \(", said.stderr, re.M), said.stderr
        noop = root / "noop.py"
        noop.write_text("")
        ran = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                              "--master_port", str(port), str(noop)], capture_output=True, text=True, timeout=120)
    assert ran.returncode != 0, ran.stdout + ran.stderr
    assert re.search(rf"port: {port}.*EADDRINUSE|address already in use", ran.stderr), ran.stderr[-3000:]
