"""Flags only ms-swift's own inference engine reads, given to `swift infer` / `swift deploy` with
another backend (ms-swift #3363: --device_map auto --max_memory with --infer_backend vllm, and the
whole model still on the first GPU).

ms-swift builds the engine in get_infer_engine (4.6.0 swift/pipelines/infer/infer.py:63-72, 3.12.6
swift/llm/infer/infer.py:63-72): only the `transformers` (3.x: `pt`) engine is given
args.get_model_kwargs(), which carries device_map, max_memory and the bitsandbytes/hqq/eetq
quantization config; vLLM, SGLang and LMDeploy are given their own engine kwargs instead. Nothing
fails: the flags are dropped without a word. A warning.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import WARNING, Finding, about
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


CHECKS = [check_engine_kwargs]
