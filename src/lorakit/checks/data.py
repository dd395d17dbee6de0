"""dataset / val_dataset: a mistyped local path, a bad `#N`, and local files whose rows ms-swift
would reject, all before anything starts.

ms-swift decides local vs hub with os.path.exists (swift/dataset/dataset_syntax.py), so
`--dataset data/trian.jsonl` goes to the ModelScope hub as a dataset id and fails a minute later
with a download error. A local .jsonl/.json/.csv is read in a bounded prefix (lorakit.datafile)
and checked the way ms-swift's AutoPreprocessor would preprocess it; ms-swift itself drops the
rows it cannot use, mostly in silence, and stops with a ZeroDivisionError when none is left.
Hub ids pass untouched: no network here.
"""

from __future__ import annotations

import json
import os

from typing import TYPE_CHECKING

from lorakit import localpath
from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, INFO, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_int

if TYPE_CHECKING:
    from lorakit.datafile import Recognition

SUFFIXES = (".jsonl", ".json", ".csv")  # the files lorakit.datafile reads (imported only for one)

KEYS = ("dataset", "val_dataset")
DROPPED = "ms-swift drops such a row (a traceback for the first 10 only; with --strict true it stops)"
HINTS = {
    "data.file.empty": "point it at a file with rows",
    "data.file.unreadable": "save the file as UTF-8 text",
    "data.json.invalid": "datasets' JSON loader fails the whole file on one bad row: fix or remove it",
    "data.row.not_object": 'each line of a .jsonl (each item of a .json array) must be one JSON object, '
                           'e.g. {"messages": [...]}',
    "data.csv.fields": "quote fields that hold commas or line breaks",
    "data.messages.invalid": DROPPED,
    "data.row.invalid": DROPPED,
    "data.row.rejected": "ms-swift drops such a row: a rejected_response must be there and differ from the response",
    "data.format.unknown": DROPPED,
    "data.media.missing": DROPPED,
    "data.row.no_response": "add the reply to learn: an assistant message, alpaca's output, or a response",
}
NONE_LEFT = "no row survives, so ms-swift stops with 'ZeroDivisionError: integer division or modulo by zero'"
NONE_LEFT_SPLIT = "no row survives, so ms-swift stops at 'assert train_sample > 0' (split_dataset_ratio is set)"
READ_ERRORS = ("data.file.unreadable", "data.file.empty", "data.json.invalid", "data.row.not_object", "data.csv.fields")


def _rows(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


def _items(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def _looks_local(name: str, cwd: str) -> bool:
    """localpath.looks_local, where a name no filesystem takes (a 300-byte segment: ENAMETOOLONG
    from Path.is_dir) is no local path: ms-swift's os.path.exists says False to it as well."""
    try:
        return localpath.looks_local(name, cwd)
    except (OSError, ValueError):
        return False


def _hub(job: Job, facts: Facts, ref: localpath.DatasetRef) -> str:
    """Where ms-swift would look for a dataset id: HF:: / MS::, else --use_hf or USE_HF."""
    if ref.hub:
        return "Hugging Face" if ref.hub.lower() == "hf" else "ModelScope"
    use_hf = as_bool(job.args.get("use_hf")) or as_bool(facts.environ.get("USE_HF", "0"))
    return "Hugging Face" if use_hf else "ModelScope"


def dataset_columns(job: Job) -> dict[str, str]:
    """--columns as ms-swift reads it (json_parse_to_dict): a mapping, or JSON text of one."""
    value = job.args.get("columns")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _sample(job: Job, key: str, item: str, ref: localpath.DatasetRef) -> tuple[list[Finding], int | None]:
    """`#N`: DatasetSyntax.parse reads it with int(); post_process asserts it is above 0."""
    if ref.sample is None:
        return [], None
    count = as_int(ref.sample)
    if count is None:
        return [about(job, ERROR, "data.sample.invalid", f"args.{key}",
                        f"{key} {item!r}: the sample count after '#' is {ref.sample!r}, not a whole number "
                        "(ms-swift reads it with int() and stops)",
                        "write NAME#N with N a whole number above 0, or leave #N off to use every row")], None
    if count <= 0:
        return [about(job, ERROR, "data.sample.invalid", f"args.{key}",
                        f"{key} {item!r}: #{count} asks for no rows (ms-swift: assert dataset_sample > 0)",
                        "write NAME#N with N a whole number above 0, or leave #N off to use every row")], None
    if count > MAX_SAMPLE:
        # ms-swift repeats rows to make N (sample_dataset): N past any dataset is a memory error later
        return [about(job, ERROR, "data.sample.invalid", f"args.{key}",
                      f"{key}: #{_short(ref.sample)} is more rows than any dataset holds: ms-swift would repeat rows "
                      "to make that many", "write NAME#N with N the rows to train on, or leave #N off")], None
    return [], count


MAX_SAMPLE = 10 ** 12
SUGGEST_FOR = 20  # missing paths that get a did-you-mean (difflib is slow on 50,000 of them)


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:10]}...{text[-10:]} ({len(text)} digits)"


def _missing(job: Job, facts: Facts, key: str, item: str, ref: localpath.DatasetRef, cwd: str,
             suggest: bool = True) -> Finding:
    where = localpath.absolute(ref.name, cwd)
    where = repr(where) if "\n" in where else where  # one finding, one line
    close = localpath.near_misses(ref.name, cwd) if suggest else []
    if ref.name.strip().startswith("/"):  # loader.py _load_repo_dataset: no hub for an absolute path
        why = "ms-swift would stop only when it loads the data ('The local path does not exist')"
    else:
        why = f"ms-swift would take it for a {_hub(job, facts, ref)} dataset id and fail downloading it"
    hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "") + (
        f"paths are relative to the directory you launch from ({cwd}); {why}")
    parts = ref.name.split()
    if len(parts) > 1 and (any(localpath.exists(p, cwd) for p in parts) or all("/" in p for p in parts)):
        import shlex  # ms-swift #5123: several datasets inside one pair of quotes

        quoted = " ".join(shlex.quote(p) if "'" in p else f"'{p}'" for p in parts[:4])
        hint = (f"these look like {len(parts)} datasets in one quoted string; give each its own quotes: --{key} "
                f"{quoted}{' ...' if len(parts) > 4 else ''}; {why}")
    return about(job, ERROR, "data.path.missing", f"args.{key}",
                   f"{key} {item!r}: no such file or directory ({where})", hint)


def _described(rec: Recognition) -> str:
    if rec.complete and rec.rows_checked == rec.total_rows:
        rows = f"{_rows(rec.total_rows)}, all checked"
    elif rec.complete:
        rows = f"the first {rec.rows_checked} of {_rows(rec.total_rows)} checked"
    else:
        rows = f"the first {_rows(rec.rows_checked)} checked ({rec.size / (1 << 20):.1f} MiB file)"
    renames = ", ".join(f"{old} -> {new}" for old, new in rec.renamed.items())
    from lorakit.datafile import FORMATS

    return f"{FORMATS[rec.format]}; {rows}" + (f"; ms-swift renames {renames}" if renames else "")


def _split_ratio(job: Job) -> float:
    """The split_dataset_ratio ms-swift applies to `dataset`: 0 with a val_dataset or streaming
    (swift/arguments/base_args/data_args.py __post_init__), and for an export's calibration data."""
    if _items(job.args.get("val_dataset")) or as_bool(job.args.get("streaming", False)):
        return 0.0
    if job.command == "export" and as_bool(job.args.get("to_cached_dataset", False)) is not True:
        return 0.0  # calibration data is loaded with split_dataset_ratio=0 (export/quant.py, every release)
    from lorakit.checks.policy import split_ratio  # the default depends on the target minor

    ratio = split_ratio(job)
    return ratio if ratio is not None else 0.0


def _rows_kept(rec: Recognition) -> int | None:
    """How many rows ms-swift would load from the file, when lorakit saw them all."""
    if not rec.complete:
        return None
    return rec.rows_usable if rec.rows_checked == rec.total_rows else rec.total_rows


def _file_findings(job: Job, key: str, name: str, rec: Recognition) -> list[Finding]:
    out = []
    none_left = _rows_kept(rec) == 0 and rec.rows_checked > 0
    ending = NONE_LEFT_SPLIT if key == "dataset" and 0 < _split_ratio(job) < 1 else NONE_LEFT
    # Rows that rightly hold no assistant message: GRPO, GKD and PPO generate the answer (their rows
    # are prompts); an embedding or reranker row's documents are in positive_/negative_messages
    # (checks/retrieval.py)
    no_reply = job.command == "rlhf" and str(job.args.get("rlhf_type")) in ("grpo", "gkd", "ppo")
    if not no_reply and job.args.get("task_type") is not None:
        from lorakit.checks.retrieval import paired

        no_reply = paired(job)
    for p in rec.problems:
        if no_reply and p.code == "data.row.no_response":
            continue
        n = rec.counts[p.code]
        # rows_checked counts the rows read as objects: rows that are not one are counted apart
        more = "" if n < 2 else f" (and {n - 1} more of the {rec.rows_checked} rows checked)" \
            if n <= rec.rows_checked else f" (and {n - 1} more row{'s' if n > 2 else ''})"
        hint = "; ".join(h for h in (p.hint, HINTS.get(p.code, "")) if h)
        if none_left and p.level == ERROR and p.code not in READ_ERRORS:
            hint, none_left = f"{hint}; {ending}", False
        loc = f"{name}:{p.line}" if p.line else name
        out.append(about(job, p.level, p.code, f"args.{key}", f"{loc}: {p.message}{more}", hint))
    if rec.format:
        out.append(about(job, INFO, "data.format", f"args.{key}", f"{name}: {_described(rec)}"))
    return out


# datasets 4.7.0 added the Json() type, which holds a field of mixed types (its release notes);
# before it the load stops (datatypes.py)
MIXED_TYPES_FROM = "4.7.0"


def _type_change(job: Job, facts: Facts, key: str, name: str, rec: Recognition) -> list[Finding]:
    if rec.type_change is None:
        return []
    from lorakit.checks.requires import version_key

    field, line, before, this = rec.type_change
    packages = facts.packages(job.env) if facts.here else None
    have = (packages or {}).get("datasets")
    if have and version_key(have) is not None and version_key(have) >= version_key(MIXED_TYPES_FROM):
        return []
    said = (f"JSON parse error: Column({field}) changed from {before} to {this}" if rec.kind == "jsonl" else
            f"ArrowTypeError: Conversion failed for column {field.split('/')[1]}")  # a .json array: from_pylist
    what = (f"{name}:{line}: {field} is a {this} here and a {before} in the rows before; pyarrow gives a field "
            f"one type, so the datasets library stops loading the file ({said})")
    fix = f"write every row's {field.split('/')[-1]} as a {before}" + (" (quote the number)" if this == "number"
                                                                      else "")
    # not "pip install datasets>=4.7": ms-swift 3.x and 4.0-4.1 require datasets<4.0 (their METADATA)
    if have:
        return [about(job, ERROR, "data.column.type", f"args.{key}",
                      f"{what}; datasets {have} is installed where `swift` runs, and only {MIXED_TYPES_FROM} and "
                      "later load such a field", fix)]
    return [about(job, WARNING, "data.column.type_maybe", f"args.{key}",
                  f"{what}, unless the datasets where `swift` runs is {MIXED_TYPES_FROM} or later", fix)]


def _too_few(job: Job, key: str, item: str, count: int, rec: Recognition) -> list[Finding]:
    """More rows asked for than the file has: the training set repeats rows (sample_dataset warns
    'repeated sampling'); val_dataset is split with ratio 1.0 and asserts val_sample <= len."""
    rows = _rows_kept(rec)
    if not rows or count <= rows:
        return []
    have = f"the file's {_rows(rows)}" + (" ms-swift keeps" if rows != rec.total_rows else "")
    if key == "val_dataset":
        return [about(job, ERROR, "data.sample.exceeds", f"args.{key}",
                        f"{key} {item!r}: #{count} is more than {have}: ms-swift stops "
                        "(assert val_sample <= len(val_dataset))", f"ask for at most #{rows}")]
    return [about(job, WARNING, "data.sample.exceeds", f"args.{key}",
                    f"{key} {item!r}: #{count} is more than {have}: ms-swift repeats "
                    f"rows to make {count}", f"ask for at most #{rows}, or drop #N to use each row once")]


def _split_leaves_none(job: Job, key: str, item: str, count: int | None,
                       rec: Recognition | None) -> list[Finding]:
    """dataset_meta.py post_process with 0 < split_dataset_ratio < 1: val_sample =
    max(int(min(rows, N) * ratio), 1) rows are held out of each dataset; `assert train_sample > 0`
    (N - val_sample), and train_test_split needs a row left over. A hub id with #1 fails too."""
    ratio = _split_ratio(job)
    if key != "dataset" or not 0 < ratio < 1:
        return []
    rows = _rows_kept(rec) if rec is not None else None
    if rows == 0:
        return []  # every row is dropped: said with the row's error
    wanted = count if count is not None else rows
    if wanted is None:
        return []
    held = max(int((min(rows, wanted) if rows is not None else wanted) * ratio), 1)
    if wanted - held > 0 and (rows is None or rows - held > 0):
        return []
    have = f"the file's {_rows(rows)}" if rows is not None and (count is None or rows <= count) else f"#{count}"
    why = ("ms-swift: assert train_sample > 0" if wanted - held <= 0 else
           f"datasets' train_test_split refuses test_size={held} for {_rows(rows or 0)}")
    return [about(job, ERROR, "data.split.empty", f"args.{key}",
                    f"{key} {item!r}: split_dataset_ratio {job.args.get('split_dataset_ratio')} holds {_rows(held)} of "
                    f"{have} out for evaluation, leaving none to train on ({why})",
                    "give it more rows, pass a val_dataset, or set split_dataset_ratio 0")]


def check_datasets(job: Job, facts: Facts) -> list[Finding]:
    cwd = os.getcwd()  # ms-swift resolves relative paths from where it is launched
    read: dict[str, Recognition] = {}
    out: list[Finding] = []
    # A --custom_dataset_info file can give a local path its own columns and preprocessor.
    look_inside = not _items(job.args.get("custom_dataset_info"))
    missing = 0
    for key in KEYS:
        for item in _items(job.args.get(key)):
            ref = localpath.parse_dataset(item, cwd)
            found, count = _sample(job, key, item, ref)
            out += found
            if not ref.name.strip():
                out.append(about(job, ERROR, "data.name.empty", f"args.{key}",
                                 f"{key} {item!r} names no dataset (an empty name)",
                                 "give a local file or a hub dataset id, or drop the empty item"))
                continue
            if not localpath.exists(ref.name, cwd):
                if _looks_local(ref.name, cwd):
                    missing += 1
                    out.append(_missing(job, facts, key, item, ref, cwd, suggest=missing <= SUGGEST_FOR))
                else:  # a hub id
                    out += _split_leaves_none(job, key, item, count, None)
                continue
            path = localpath.absolute(ref.name, cwd)
            if not (look_inside and path.lower().endswith(SUFFIXES) and os.path.isfile(path)):
                out += _split_leaves_none(job, key, item, count, None)
                continue  # a dataset dir, or a format not read here
            from lorakit import datafile

            first = path not in read
            if first:
                read[path] = datafile.recognize(
                    path, columns=dataset_columns(job), cwd=cwd, environ=facts.environ,
                    auto_mapping=not as_bool(job.args.get("disable_auto_column_mapping", False)))
            if first:
                out += _file_findings(job, key, ref.name.strip(), read[path])
                out += _type_change(job, facts, key, ref.name.strip(), read[path])
            if count is not None:
                out += _too_few(job, key, item, count, read[path])
            out += _split_leaves_none(job, key, item, count, read[path])
    return out


CHECKS = [check_datasets]
