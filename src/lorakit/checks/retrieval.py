"""Embedding and reranker rows (`--task_type embedding | reranker | generative_reranker`).

From ms-swift 3.8 such a row is the query in `messages` and its documents in
`positive_messages` / `negative_messages`, each a list of message lists (the Embedding and
Reranker best-practice docs; template_inputs.py reads the `positive_`/`negative_` prefixes). Its
messages hold no assistant reply, so data.row.no_response is not said for it. A row whose
positive_messages is missing, text, a list of text or a flat list of messages has no document
ms-swift can use: an embedding row is dropped (4.6.0 _embedding_encode indexes `positive[0]`),
a reranker row with no documents too, and one with only negatives fails the first training step
(TypeError in transformers' trainer). Measured on 4.6.0 and 3.12.6 (tests/test_real_failures.py),
with ms-swift #4728's {"query", "positive", "negative"} rows among them. 3.6-3.7 read the older
query/response/rejected_response rows instead, where the ordinary response rules hold.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, listed

TASKS = ("embedding", "reranker", "generative_reranker")
PAIRED_FROM = (3, 8)  # TemplateInputs.positive: the positive_messages rows
# the docs' row: embedding pairs two texts (user turns), a reranker a query with documents (assistant turns)
ROW = ('{{"messages": [{{"role": "user", "content": "QUERY"}}], "positive_messages": [[{{"role": "{0}", '
       '"content": "DOC"}}]], "negative_messages": [[{{"role": "{0}", "content": "OTHER DOC"}}]]}}')
UNREAD = ("positive", "negative", "positives", "negatives", "pos", "neg", "positive_docs", "negative_docs")


def paired(job: Job) -> bool:
    """The job trains an embedding or reranker model on positive_messages rows."""
    if job.command not in ("sft", "pt") or str(job.args.get("task_type")) not in TASKS:
        return False
    from lorakit.flaghistory import targeted

    return targeted(job.swift_major, job.swift_version) >= PAIRED_FROM


def _hint(task: str, rec) -> str:
    hint = "each row: " + ROW.format("user" if task == "embedding" else "assistant")
    seen = [k for k in UNREAD if k in rec.keys and k not in rec.renamed]
    if seen:
        hint += f"; ms-swift does not read {' or '.join(map(repr, seen))}: name them positive_messages / " \
                "negative_messages (or map them with --columns)"
    return hint


def check_positive(job: Job, facts: Facts) -> list[Finding]:
    if not paired(job) or listed(job.args.get("custom_dataset_info")):
        return []  # a --custom_dataset_info file may give the file its own preprocessor
    from lorakit import datafile
    from lorakit.checks.data import dataset_columns
    from lorakit.checks.rlhf import local_files

    task = str(job.args.get("task_type"))
    out, seen = [], set()
    for key, path in local_files(job):
        if path in seen:
            continue  # one file given as dataset and val_dataset: one finding
        seen.add(path)
        rec = datafile.recognize(path, columns=dataset_columns(job), environ=facts.environ,
                                 auto_mapping=not as_bool(job.args.get("disable_auto_column_mapping", False)))
        line = rec.first_without_positive
        if not rec.rows_usable or line is None:
            continue  # unreadable, or no usable row: the data check says so
        shape = "" if rec.positive_shape == "missing" else f" (its positive_messages is {rec.positive_shape})"
        if rec.positive_rows:
            out.append(about(job, WARNING, "data.row.no_positive", f"args.{key}",
                             f"{path}:{line}: task_type {task} pairs each query (messages) with its documents "
                             f"(positive_messages: a list of message lists), and only {rec.positive_rows} of "
                             f"{rec.rows_checked} rows checked {'has' if rec.positive_rows == 1 else 'have'} them"
                             f"{shape}: ms-swift has no document to learn from in the others", _hint(task, rec)))
            continue
        out.append(about(job, ERROR, "data.row.no_positive", f"args.{key}",
                         f"{path}:{line}: task_type {task} pairs each query (messages) with its documents "
                         "(positive_messages: a list of message lists), and no row checked has them"
                         f"{shape}: the run stops before it trains (ms-swift drops such rows; reranker rows with "
                         "only negative_messages fail the first step)", _hint(task, rec)))
    return out


CHECKS = [check_positive]
