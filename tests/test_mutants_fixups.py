"""Gaps a mutation run (mutmut 3.8.1) found in fixups.py: the hint of the global_batch_size
errors, where "both set" says they are when one option set both, a job with no recorded source,
and a note_dropped that must stay quiet unless a global_batch_size really was dropped."""

from __future__ import annotations

from dataclasses import replace

from lorakit import presets
from lorakit.fixups import DROPPED, derive_grad_accum
from lorakit.job import build_job

GAS = "args.gradient_accumulation_steps"
GBS = "args.global_batch_size"


def job_from(name: str, args: dict, sources: dict):
    """A resolved preset with keys set as given (before the fixups), as test_global_batch builds it."""
    resolved = presets.load(name)
    base = dict(resolved.data["args"])
    if "gradient_accumulation_steps" in args and "global_batch_size" not in args:
        base.pop("global_batch_size", None)
    resolved.data["args"] = {**base, **args}
    resolved.sources.update(sources)
    return build_job(resolved, {}, swift_major=4)


def notes(job):
    return [(f.level, f.code, f.message, f.hint, f.file) for f in derive_grad_accum(job).adjustments]


BOTH_HINT = "keep one: global_batch_size derives gradient_accumulation_steps"


def test_both_set_by_one_option_is_said_in_that_option_with_the_hint():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": 4}, {GBS: "--set", GAS: "--set"})
    assert notes(job) == [("error", "batch.global_batch_size.both",
                           "global_batch_size and gradient_accumulation_steps are both set in --set: one derives "
                           "the other", BOTH_HINT, "--set")]


def test_both_set_by_two_options_names_both_with_the_hint():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": 4},
                   {GBS: "--set", GAS: "-- extra flags"})
    assert notes(job) == [("error", "batch.global_batch_size.both",
                           "global_batch_size and gradient_accumulation_steps are both set on the command line "
                           "(--set, -- extra flags): one derives the other", BOTH_HINT, "--set")]


def test_both_set_in_one_file_names_the_file():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": 4},
                   {GBS: "/p/a.yaml", GAS: "/p/a.yaml"})
    assert notes(job)[0][2] == ("global_batch_size and gradient_accumulation_steps are both set in /p/a.yaml: "
                                "one derives the other")


def test_both_set_with_no_recorded_source_says_the_preset():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": 4}, {})
    job = replace(job, sources={k: v for k, v in job.sources.items() if k not in (GBS, GAS)})
    assert notes(job) == [("error", "batch.global_batch_size.both",
                           "global_batch_size and gradient_accumulation_steps are both set in the preset: one "
                           "derives the other", BOTH_HINT, "")]


def test_an_invalid_global_batch_size_has_its_hint():
    job = job_from("zero2", {"global_batch_size": 0}, {GBS: "--set"})
    assert notes(job) == [("error", "batch.global_batch_size.invalid", "global_batch_size 0 is not a positive integer",
                           "give the number of samples per optimizer step, e.g. global_batch_size: 64", "--set")]


def test_command_line_steps_over_a_global_batch_size_with_no_source_say_the_preset():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": 4}, {GBS: "", GAS: "--set"})
    assert notes(job) == [("info", "batch.global_batch_size.replaced",
                           "global_batch_size 64 from the preset was replaced by gradient_accumulation_steps 4 "
                           "from --set",
                           "the later setting wins; to keep the global batch, set global_batch_size there instead",
                           "--set")]


def test_steps_alone_with_nothing_dropped_say_nothing():
    job = job_from("zero2", {"gradient_accumulation_steps": 3}, {GAS: "/p/child.yaml"})
    assert DROPPED not in job.sources
    after = derive_grad_accum(job)
    assert after.adjustments == () and after.args["gradient_accumulation_steps"] == 3


def test_a_dropped_global_batch_size_without_steps_says_nothing():
    job = job_from("zero2", {"gradient_accumulation_steps": 3}, {GAS: "/p/child.yaml"})
    args = {k: v for k, v in job.args.items() if k != "gradient_accumulation_steps"}
    job = replace(job, args=args, sources={**job.sources, DROPPED: "32 from /p/parent.yaml"})
    assert derive_grad_accum(job).adjustments == ()
