"""--force's swap (mergeguard._swap): the previous merged model moves aside, the new one moves
in, and when that second move fails the previous one is put back. Failures are injected at the
exact rename with a patched Path.rename; everything else is real files."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from lorakit import mergeguard
from lorakit.errors import EnvironmentProblem, LorakitError
from test_merge import fake, intact, make_base, old_output, tree  # noqa: F401  (tree, fake: fixtures)


@pytest.fixture
def renames(monkeypatch):
    """Record every Path.rename; fail the ones whose (source, destination) is in `fail`."""
    real = Path.rename
    seen: list = []
    fail: set = set()

    def rename(self, target):
        seen.append((Path(self), Path(target)))
        if (Path(self), Path(target)) in fail:
            raise OSError(errno.EACCES, "Permission denied")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    return seen, fail


def forced_plan(tmp_path: Path) -> tuple:
    target = tmp_path / "merged"
    make_base(target, nbytes=10)
    (target / "KEEP").write_text("the good merge from yesterday")
    plan = mergeguard.plan_output(target, force=True, protect={})
    assert plan.write_to == tmp_path / "merged.lorakit-tmp"
    return plan, target, tmp_path / "merged.lorakit-tmp", tmp_path / "merged.lorakit-old"


def new_model(write_to: Path):
    def run() -> int:  # what ms-swift leaves: a whole merged model in the temporary dir
        make_base(write_to, nbytes=4096)
        return 0
    return run


def test_a_failed_move_into_place_puts_the_previous_model_back(tmp_path, renames, capsys):
    seen, fail = renames
    plan, target, tmp, old = forced_plan(tmp_path)
    fail.add((tmp, target))
    assert mergeguard.run_guarded(plan, new_model(tmp)) == 1
    assert seen == [(target, old), (tmp, target), (old, target)]  # aside, in (fails), back
    assert (target / "KEEP").read_text() == "the good merge from yesterday"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]
    assert capsys.readouterr().err.splitlines() == [
        f"lorakit: could not move the merged model into {target}: Permission denied",
        f"lorakit: merge failed (exit 1); removed the temporary {tmp}; {target} is untouched",
    ]


def test_when_putting_it_back_fails_too_both_models_are_kept_and_said(tmp_path, renames, capsys):
    seen, fail = renames
    plan, target, tmp, old = forced_plan(tmp_path)
    fail.update({(tmp, target), (old, target)})
    with pytest.raises(EnvironmentProblem) as info:
        mergeguard.run_guarded(plan, new_model(tmp))
    assert info.value.code == 1
    assert info.value.message == (
        f"could not move the merged model into {target} (Permission denied), nor put the previous one back "
        f"(Permission denied): the new model is in {tmp}, the previous one in {old}")
    assert info.value.hint == f"keep one of them: mv {old} {target} (or mv {tmp} {target})"
    assert (old / "KEEP").read_text() == "the good merge from yesterday"
    assert mergeguard.looks_merged(tmp) and not target.exists()
    assert capsys.readouterr().err == ""
    with pytest.raises(LorakitError) as again:  # the next run does not paper over it either
        mergeguard.plan_output(target, force=True, protect={})
    assert again.value.hint == f"move it back first: mv {old} {target}"


def test_cli_force_merge_keeps_the_old_output_when_the_move_in_fails(cli, tree, fake, renames):
    """The same through `lorakit merge --force`, with the fake swift writing the new model."""
    _, out, ckpt = tree
    seen, fail = renames
    old = old_output(ckpt)
    tmp, aside = Path(f"{old}.lorakit-tmp"), Path(f"{old}.lorakit-old")
    fail.add((tmp, old))
    result = cli(["merge", "--adapters", str(out), "--force"], env=fake)
    assert (result.code, result.stdout) == (1, "")
    assert seen == [(old, aside), (tmp, old), (aside, old)]
    assert intact(old)
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: could not move the merged model into {old}: Permission denied",
        f"lorakit: merge failed (exit 1); removed the temporary {tmp}; {old} is untouched",
    ]
    assert json.loads(Path(fake["FAKE_RECORD"]).read_text())[-1] == str(tmp)  # the merge did run
