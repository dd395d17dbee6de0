"""Flags only ms-swift's own inference engine reads, given to `swift infer` / `swift deploy` with
another backend (ms-swift #3363: --device_map auto --max_memory with --infer_backend vllm, and the
whole model still on the first GPU).

ms-swift builds the engine in get_infer_engine (4.6.0 swift/pipelines/infer/infer.py:63-72, 3.12.6
swift/llm/infer/infer.py:63-72): only the `transformers` (3.x: `pt`) engine is given
args.get_model_kwargs(), which carries device_map, max_memory and the bitsandbytes/hqq/eetq
quantization config; vLLM, SGLang and LMDeploy are given their own engine kwargs instead. Nothing
fails: the flags are dropped without a word. A warning.

A pooling model (task_type seq_cls, reranker, embedding: given, or recorded in the checkpoint's
args.json) on vLLM needs the release whose vLLM engine runs vLLM's pooling tasks (3.9 / 3.7): an
error before, where vLLM loads it as a causal LM and fails at the head's weights (#4676).
"""

from __future__ import annotations

import os

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job

OWN = ("pt", "transformers")  # ms-swift's engine: 3.x calls it pt, 4.x transformers
MODEL_KWARGS = ("device_map", "max_memory")
# quantized while loading, by get_model_kwargs' quantization_config (4.6.0 swift/arguments/base_args/
# quant_args.py:33 quant_method: Literal['bnb', 'hqq', 'eetq', 'quanto', 'fp8'])
LOAD_QUANT = ("bnb", "hqq", "eetq", "quanto", "fp8")


def check_engine_kwargs(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("infer", "deploy"):
        return []
    backend = str(job.args.get("infer_backend") or "").strip().lower()
    if not backend or backend in OWN:
        return []
    given = [k for k in MODEL_KWARGS if job.args.get(k) not in (None, "")]
    if str(job.args.get("quant_method") or "").lower() in LOAD_QUANT:
        given.append("quant_method")
    if not given:
        return []
    what = ", ".join(f"--{k} {job.args[k]}" for k in given)
    spread = ("; vLLM spreads a model over GPUs with --vllm_tensor_parallel_size" if backend == "vllm"
              and any(k in given for k in MODEL_KWARGS) else "")
    quant = (f"; quant_method {job.args['quant_method']} quantizes only while ms-swift's engine loads"
             if "quant_method" in given else "")
    return [about(job, WARNING, "infer.engine.ignored", f"args.{given[0]}",
                  f"{what} ({job.source_of('args.' + given[0])}) configure ms-swift's own engine, and infer_backend is "
                  f"{backend}: ms-swift drops them without a word (get_infer_engine passes get_model_kwargs() to the "
                  f"{'/'.join(OWN)} engine only){spread}{quant}",
                  f"drop {', '.join('--' + k for k in given)}, or use --infer_backend "
                  f"{'pt' if job.swift_major == 3 else 'transformers'}")]


# ms-swift's vLLM engine runs a non-generative model as vLLM's pooling task only from these
# releases (3.9.0 swift/llm/infer/infer_engine/vllm_engine.py _prepare_engine_kwargs: seq_cls ->
# 'classify', reranker -> 'score'; embedding -> 'embed' from 3.7.0, read from every wheel). Before,
# vLLM loads the checkpoint as a causal LM and stops at the weights: "There is no module or
# parameter named 'score' in Qwen2VLForConditionalGeneration" (ms-swift #4676, #4289, #5165).
VLLM_TASK_FROM = {"embedding": (3, 7), "seq_cls": (3, 9), "reranker": (3, 9), "generative_reranker": (3, 9)}


def _task_type(job: Job) -> tuple[str | None, str]:
    """task_type as the checkpoint ms-swift loads its arguments from records it, else as given:
    load_args_from_ckpt force-loads task_type over a given one (4.6.0 base_args.py:290-294, 3.12.6
    base_args.py:258-262, 3.6.4 the same) unless --load_args false reads no args.json at all."""
    from lorakit.ckptargs import ckpt_args, loads_args

    if loads_args(job.args, job.command):
        folder, recorded = ckpt_args(job.args, job.command)
        task = recorded.get("task_type")
        if isinstance(task, str) and task:
            return task, os.path.join(folder, "args.json")
    given = job.args.get("task_type")
    if isinstance(given, str) and given:
        return given, job.source_of("args.task_type") or "--task_type"
    return None, ""


def check_vllm_task(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("infer", "deploy") or str(job.args.get("infer_backend") or "").lower() != "vllm":
        return []
    task, where = _task_type(job)
    first = VLLM_TASK_FROM.get(task or "")
    if first is None or job.swift_major != 3:
        return []
    from lorakit.flaghistory import targeted

    if targeted(3, job.swift_version) >= first:
        return []
    since = ".".join(map(str, first))
    return [about(job, ERROR, "infer.vllm.task", "args.infer_backend",
                  f"task_type {task} ({where}) with infer_backend vllm: ms-swift's vLLM engine serves {task} models "
                  f"only from ms-swift {since}; before, vLLM loads it as a causal LM" + (
                      " and stops at its head's weights (\"There is no module or parameter named 'score'\", ms-swift "
                      "#4676)" if task != "embedding" else " (its engine has no embed task before then)"),
                  f"--infer_backend pt; or upgrade to ms-swift {since} or later (pip install 'ms-swift>={since}')")]


CHECKS = [check_engine_kwargs, check_vllm_task]
