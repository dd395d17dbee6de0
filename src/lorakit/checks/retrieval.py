"""Embedding and reranker rows (`--task_type embedding | reranker | generative_reranker`).

From ms-swift 3.8 such a row is the query in `messages` and its documents in
`positive_messages` / `negative_messages`, each a list of message lists (the Embedding and
Reranker best-practice docs; template_inputs.py reads the `positive_`/`negative_` prefixes). Its
messages hold no assistant reply, so data.row.no_response is not said for it. A row without
positive_messages has no document to learn: 4.6.0's _embedding_encode indexes `positive[0]`
and the row is dropped; when none is left the run stops before training (measured on 4.6.0 and
3.12.6 with rows written {"query", "positive", "negative"}, ms-swift #4728: tests/
test_real_failures.py). 3.6-3.7 read the older query/response/rejected_response rows instead,
where the ordinary response rules hold.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job

TASKS = ("embedding", "reranker", "generative_reranker")
PAIRED_FROM = (3, 8)  # TemplateInputs.positive: the positive_messages rows
# the docs' row: embedding pairs two texts (user turns), a reranker a query with documents (assistant turns)
ROW = ('{{"messages": [{{"role": "user", "content": "QUERY"}}], "positive_messages": [[{{"role": "{0}", '
       '"content": "DOC"}}]], "negative_messages": [[{{"role": "{0}", "content": "OTHER DOC"}}]]}}')


def paired(job: Job) -> bool:
    """The job trains an embedding or reranker model on positive_messages rows."""
    if job.command not in ("sft", "pt") or str(job.args.get("task_type")) not in TASKS:
        return False
    from lorakit.flaghistory import targeted

    return targeted(job.swift_major, job.swift_version) >= PAIRED_FROM


def _close_keys(path: str, line: int) -> str:
    """'positive' / 'negative' (the names people write): what ms-swift calls them."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(1 << 16)
        row = json.loads(text.splitlines()[line - 1]) if path.lower().endswith(".jsonl") else None
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return ""
    seen = [k for k in ("positive", "negative", "positives", "negatives", "pos", "neg") if isinstance(row, dict)
            and k in row]
    return (f"; ms-swift does not read {' or '.join(map(repr, seen))}: name them positive_messages / "
            "negative_messages" if seen else "")


def check_positive(job: Job, facts: Facts) -> list[Finding]:
    if not paired(job):
        return []
    from lorakit import datafile
    from lorakit.checks.rlhf import local_files

    task = str(job.args.get("task_type"))
    row = ROW.format("user" if task == "embedding" else "assistant")
    out = []
    for key, path in local_files(job):
        rec = datafile.recognize(path, environ=facts.environ)
        line = rec.first_without_positive
        if not rec.rows_usable or line is None:
            continue  # unreadable, or no usable row: the data check says so
        if rec.positive_rows:
            out.append(about(job, WARNING, "data.row.no_positive", f"args.{key}",
                             f"{path}:{line}: task_type {task} pairs each query (messages) with its document "
                             f"(positive_messages), and only {rec.positive_rows} of {rec.rows_checked} rows checked "
                             "have one: ms-swift drops the others", "each row: " + row))
            continue
        out.append(about(job, ERROR, "data.row.no_positive", f"args.{key}",
                         f"{path}:{line}: task_type {task} pairs each query (messages) with its document "
                         "(positive_messages), and no row checked has one: ms-swift drops every row and stops "
                         "before training", "each row: " + row + _close_keys(path, line)))
    return out


CHECKS = [check_positive]
