

def test_ignore_args_error_makes_an_unknown_flag_a_warning(tmp_path, monkeypatch):
    """ms-swift's web-ui writes --ignore_args_error True; ms-swift then only warns about flags its
    parser does not know (4.6.0 swift/pipelines/base.py:36-40), ms-swift #5718's command."""
    from conftest import run_cli, swift_source

    monkeypatch.chdir(tmp_path)
    result = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--nproc_per_node", "8",
                      "--ignore_args_error", "True"])
    assert [line for line in result.stderr.splitlines() if "nproc_per_node" in line and "[" in line] == [
        "warning[flags.ignored] args.nproc_per_node (-- extra flags): unknown flag --nproc_per_node for ms-swift "
        "3.12.6 `swift sft`: ignore_args_error is true, so ms-swift only warns (\"remaining_argv: [...]\") and runs "
        "without it"]
    plain = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--nproc_per_node", "8"])
    assert plain.code == 2 and "error[flags.unknown] args.nproc_per_node" in plain.stderr
    source = swift_source("pipelines/base.py")
    at = source.index("            if getattr(args, 'ignore_args_error', False):")
    assert source[at + 1] == "                logger.warning(f'remaining_argv: {remaining_argv}')"


def test_ignore_args_error_does_not_hide_a_choice_the_target_lacks(tmp_path, monkeypatch):
    """argparse refuses an invalid choice before ms-swift looks at ignore_args_error (a second
    hostile review: the choice finding shares the too_new code)."""
    from conftest import run_cli

    monkeypatch.chdir(tmp_path)
    result = run_cli(["validate", "-p", "dpo", "--swift-version", "3.5", "--", "--rlhf_type", "gkd",
                      "--ignore_args_error", "true"])
    assert result.code == 2
    assert ("error[flags.too_new] args.rlhf_type (-- extra flags): rlhf_type: 'gkd' is not a choice in ms-swift 3.5 "
            "(it is from 3.6); 3.5 takes dpo, orpo, simpo, kto, cpo, rm, ppo, grpo") in result.stderr.splitlines()
