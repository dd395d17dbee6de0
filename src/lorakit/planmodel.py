"""Which model `lorakit plan` (and the memory check) plans for: a local dir or HF cache hit read
through modelinfo, else lorakit's table of published configs (archtable), with a did-you-mean
to the same family's nearest size; a path that does not exist is said as such, never planned.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lorakit import archtable, modelinfo
from lorakit.errors import LorakitError
from lorakit.job import Job
from lorakit.values import did_you_mean

SIZE = re.compile(r"(\d+(?:\.\d+)?)b(?![a-z])")  # the '8b' of qwen3-8b-instruct


VARIANTS = ("-Instruct", "-Base")


def _known_models() -> str:
    """'Qwen/Qwen3-8B[-Base], meta-llama/Llama-3.1-8B[-Instruct], meta-llama/Llama-3.3-70B-Instruct'."""
    table = archtable.ARCH_TABLE
    variant = {i for i in table for v in VARIANTS if i.endswith(v) and i[:-len(v)] in table}
    return ", ".join(i + "".join(f"[{v}]" for v in VARIANTS if i + v in table) for i in table if i not in variant)


def _closest(model: str) -> str | None:
    """Did-you-mean: the same family's nearest size ('Qwen3-8B-Instruct' -> 'Qwen/Qwen3-8B'),
    else difflib's closest name."""
    names = {k.rsplit("/", 1)[-1].lower(): k for k in archtable.ARCH_TABLE}
    name, want = model.rsplit("/", 1)[-1].lower(), SIZE.search(model.rsplit("/", 1)[-1].lower())
    sized = {n: SIZE.search(n) for n in names}
    same = [n for n, m in sized.items() if want and m and n[:m.start()] == name[:want.start()]]
    if same:
        return names[min(same, key=lambda n: (abs(float(sized[n].group(1)) - float(want.group(1))),
                                              ("instruct" in n) != ("instruct" in name)))]
    close = did_you_mean(name, names)
    return names[close[0]] if close else None


def unknown_model(model: str, source: str) -> LorakitError:
    close = _closest(model)
    hint = (f"did you mean {close!r}? " if close else "") + \
        f"the table knows {_known_models()}; for any other model, download it and pass its directory"
    return LorakitError(f"model {model!r}{f' ({source})' if source else ''}: no local copy and not in "
                        "lorakit's table of published configs, so its shapes are unknown", hint=hint)


def looks_like_path(model: str) -> bool:
    """A local path, not a hub id ('Org/Name'): ms-swift would not download it either."""
    sep = os.sep + (os.altsep or "")
    if model.startswith(("/", ".", "~")) or sum(model.count(c) for c in sep) >= 2:
        return True
    parent = Path(model).expanduser().parent
    return str(parent) not in ("", ".") and parent.is_dir()


def missing_path(model: str, source: str) -> LorakitError:
    path = os.path.expanduser(model)
    what = "is not a directory" if os.path.exists(path) else "does not exist"
    return LorakitError(f"model {model!r}{f' ({source})' if source else ''}: {path} {what}",
                        hint="give the directory of a downloaded model (config.json and *.safetensors), "
                             "or a hub id such as Qwen/Qwen3-8B")


def load_model(job: Job, build_shapes: bool = False) -> tuple[modelinfo.ModelInfo, str, str | None]:
    """(info, where it came from, config dtype): a local dir or cache hit first, else the table.
    A local model's files are read through modelconfig: a malformed config.json or safetensors
    header is a ModelFileError (exit 2) naming the file and the field. With build_shapes (`lorakit
    plan`, never validate: it starts ms-swift's Python), a local config.json without weights that
    the table does not know is built on the meta device for its shapes (lorakit.simulate)."""
    model, source = job.args.get("model"), job.source_of("args.model")
    if not model:
        raise LorakitError("no model: the preset sets no 'model'", hint="pass --model ID_OR_DIR")
    model = str(model)
    local = modelinfo.find_local_model(model)
    info = modelinfo.load_model_info(local) if local is not None else None
    if info is not None and info.linears:
        return info, str(local), info.torch_dtype
    table = archtable.arch_info(model)
    if table is None and info is not None and build_shapes:
        from lorakit import simulate

        built = simulate.shapes_info(local)
        return built, f"{local}, config.json only", built.torch_dtype
    if table is None and local is not None:
        why = "has no config.json" if info is None else "has no safetensors weights to read shapes from"
        raise LorakitError(f"model {model!r}: {local} {why}",
                           hint="point --model at a directory with config.json and *.safetensors")
    if table is None and looks_like_path(model):
        raise missing_path(model, source)
    if table is None:
        raise unknown_model(model, source)
    where = "lorakit's table of published configs"
    if local is not None:  # e.g. a *.bin-only download: the table still knows the architecture
        where += f"; {local} has no safetensors"
    return table, where, "bfloat16"  # every table entry ships bf16 weights
