"""GRPO/GKD's vLLM per ms-swift minor (checks/vllm_mode.py) and DPO resumed from an SFT checkpoint
(checks/rlhf.py check_resume_sft): each rule's value tests, then the CLI's exit code and exact text.

ms-swift facts these rest on (read in 4.6.0, 3.12.6 and the 3.x wheels):
- colocate + vllm_server_host: RLHFArguments._init_external_vllm connects whenever a host is set;
- a rollout server named on this machine that nothing listens on: VLLMClient.check_server gives up
  after vllm_server_timeout;
- vllm_mode is required only from 3.11 (3.5-3.10 default to colocate, 3.1-3.4 have vllm_device);
- 3.1-3.4 GRPO put vLLM on the GPUs beyond NPROC_PER_NODE (grpo_trainer.py, vllm_device 'auto').
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli, swift3_python, swift_source
from lorakit.checks import run_checks
from lorakit.checks.facts import Facts
from lorakit.cli.common import JobOptions, job_from_options
from lorakit.cli.rlhf import sft_fixups

CONFLICT = ("vllm_mode colocate with vllm_server_host set: ms-swift connects to a rollout server whenever "
            "vllm_server_host or vllm_server_base_url is set (RLHFArguments._init_external_vllm{switch}), here "
            "{where}, and waits for it ('Server is not up yet'), while colocate means a vLLM inside each "
            "training rank")
CONFLICT_HINT = ("for a `swift rollout` server: vllm_mode: server, with vllm_server_port the rollout's --port; "
                 "for colocate: drop vllm_server_host")


def job(preset: str, *sets: str, version: str = "4", extra: tuple[str, ...] = ()):
    return sft_fixups(job_from_options(JobOptions(preset, sets=list(sets), extra=list(extra), swift_version=version),
                                       env={}))


def found(j, facts: Facts | None = None, code: str | None = None) -> list[tuple[str, str, str]]:
    facts = facts or Facts(here=False)
    return [(f.level, f.code, f.message) for f in run_checks(j, facts)
            if f.level in ("error", "warning") and (code is None or f.code == code)]


class Probe:
    """This machine's answers: whether host:port listens, and its name; records what was asked."""

    def __init__(self, listening: bool = False, name: str = "trainbox", addresses: tuple = ()):
        self.listening, self.name, self.asked, self.addresses = listening, name, [], addresses

    def facts(self, launching: bool = False) -> Facts:
        def listen(host, port, w, what):
            self.asked.append((host, port, w))
            return self.listening
        return Facts(here=True, has_module=lambda name: True, listening=listen, hostname=lambda: self.name,
                     own_address=lambda host: host in self.addresses, launching=launching)


# --- 1. colocate with a rollout server's host ---------------------------------------------------


def test_colocate_with_a_server_host_is_a_mode_conflict():
    j = job("grpo_colocate", "vllm_server_host=10.0.0.5")
    where = "10.0.0.5 port 8000 (vllm_server_port)"
    assert found(j, code="rlhf.vllm.mode_conflict") == [
        ("error", "rlhf.vllm.mode_conflict", CONFLICT.format(switch="", where=where))]
    hints = [f.hint for f in run_checks(j, Facts(here=False)) if f.code == "rlhf.vllm.mode_conflict"]
    assert hints == [CONFLICT_HINT]


def test_colocate_with_a_base_url_names_the_url():
    j = job("grpo_colocate", "vllm_server_base_url=http://10.0.0.5:20901")
    [(level, code, message)] = found(j, code="rlhf.vllm.mode_conflict")
    assert message.startswith("vllm_mode colocate with vllm_server_base_url set: ") and \
        ", here http://10.0.0.5:20901, and waits" in message


def test_on_3_5_the_conflict_says_ms_swift_switches_to_server():
    j = job("grpo_colocate", "vllm_server_host=10.0.0.5", "vllm_server_port=20901", version="3.5")
    assert found(j, code="rlhf.vllm.mode_conflict") == [
        ("error", "rlhf.vllm.mode_conflict",
         CONFLICT.format(switch="; ms-swift 3.5-3.6 switch vllm_mode to server",
                         where="10.0.0.5 port 20901 (vllm_server_port)"))]


@pytest.mark.parametrize("sets", [("vllm_mode=server", "vllm_server_host=10.0.0.5"),  # the right spelling
                                  ("vllm_server_host=null",),  # plain colocate
                                  ("use_vllm=false", "vllm_mode=null", "vllm_server_host=10.0.0.5")])
def test_no_conflict_without_both(sets):
    assert found(job("grpo_colocate", *sets), code="rlhf.vllm.mode_conflict") == []


def test_gkd_colocate_with_a_host_conflicts_too_and_dpo_never():
    gkd = job("grpo_colocate", "rlhf_type=gkd", "teacher_model=Qwen/Qwen3-8B", "vllm_server_host=10.0.0.5")
    assert [c for _, c, _ in found(gkd, code="rlhf.vllm.mode_conflict")] == ["rlhf.vllm.mode_conflict"]
    # ms-swift's _init_rollout returns at once for an rlhf_type other than grpo/gkd
    dpo = job("dpo", "use_vllm=true", "vllm_mode=colocate", "vllm_server_host=10.0.0.5")
    assert found(dpo, code="rlhf.vllm.mode_conflict") == []


# --- 2. a rollout server on this machine that nothing listens on --------------------------------

UNREACHABLE = ("nothing listens at {at} on this machine{waited}: the trainer polls the rollout server there for "
               "vllm_server_timeout and then stops ('Servers not reachable')")
UNREACHABLE_HINT = ("start `swift rollout --port {port}` first, or set vllm_server_port to the port the rollout "
                    "listens on (its --port)")


def server(*sets: str, kind: str = "grpo", version: str = "4"):
    extra = ("rlhf_type=gkd", "teacher_model=Qwen/Qwen3-8B") if kind == "gkd" else ()
    return job("grpo_server", "rollout_gpus=null", *extra, *sets, version=version)


@pytest.mark.parametrize("kind", ["grpo", "gkd"])
def test_a_loopback_server_nothing_listens_on_is_refused(kind):
    probe = Probe(listening=False)
    j = server(kind=kind)
    assert found(j, probe.facts(), code="rlhf.vllm.server_unreachable") == [
        ("error", "rlhf.vllm.server_unreachable", UNREACHABLE.format(at="127.0.0.1:8000", waited=""))]
    assert [f.hint for f in run_checks(j, probe.facts()) if f.code == "rlhf.vllm.server_unreachable"] == [
        UNREACHABLE_HINT.format(port=8000)]
    assert probe.asked == [("127.0.0.1", 8000, 0.0)] * 2


def test_a_listening_server_passes():
    probe = Probe(listening=True)
    assert found(server("vllm_server_port=20901"), probe.facts(), code="rlhf.vllm.server_unreachable") == []
    assert probe.asked == [("127.0.0.1", 20901, 0.0)]


@pytest.mark.parametrize("host,probed", [("localhost", True), ("0.0.0.0", True), ("127.0.1.1", True),
                                         ("TrainBox", True), ("10.0.0.5", False), ("rollout-node", False)])
def test_only_this_machines_names_are_probed(host, probed):
    probe = Probe(listening=False)
    codes = [c for _, c, _ in found(server(f"vllm_server_host={host}"), probe.facts(),
                                    code="rlhf.vllm.server_unreachable")]
    assert codes == (["rlhf.vllm.server_unreachable"] if probed else [])
    assert probe.asked == ([(host, 8000, 0.0)] if probed else [])


def test_this_machines_own_lan_address_is_probed():
    # #6446's user gave the rollout's machine by its LAN address: this machine's own, so probed
    probe = Probe(listening=False, addresses=("10.0.0.5",))
    assert found(server("vllm_server_host=10.0.0.5"), probe.facts(), code="rlhf.vllm.server_unreachable") == [
        ("error", "rlhf.vllm.server_unreachable", UNREACHABLE.format(at="10.0.0.5:8000", waited=""))]
    assert probe.asked == [("10.0.0.5", 8000, 0.0)]


def test_own_address_asks_the_kernel_not_dns():
    from lorakit.checks.facts import own_address

    assert own_address("127.0.0.1") and own_address(" [127.0.0.1] ")
    # TEST-NET-1 (RFC 5737) is nobody's; a name is never resolved, not even this machine's
    assert not own_address("192.0.2.1") and not own_address("localhost") and not own_address("")
    assert not own_address("not an address")


def test_not_probed_for_the_paired_launch_nor_a_dry_run():
    probe = Probe(listening=False)
    # rollout_gpus set: lorakit starts the rollout itself, then waits for its /health/
    paired = job("grpo_server")
    assert found(paired, probe.facts(), code="rlhf.vllm.server_unreachable") == []
    # rendered for another machine: this one's ports say nothing
    assert found(server(), Facts(here=False), code="rlhf.vllm.server_unreachable") == []
    assert probe.asked == []


def test_a_launch_waits_as_long_as_the_trainer_would():
    probe = Probe(listening=False)
    got = found(server("vllm_server_timeout=60"), probe.facts(launching=True), code="rlhf.vllm.server_unreachable")
    assert got == [("error", "rlhf.vllm.server_unreachable",
                    UNREACHABLE.format(at="127.0.0.1:8000", waited=" (waited 60 s)"))]
    assert probe.asked == [("127.0.0.1", 8000, 60.0)]
    probe.asked.clear()
    found(server(), probe.facts(launching=True), code="rlhf.vllm.server_unreachable")
    assert probe.asked == [("127.0.0.1", 8000, 240.0)]  # ms-swift's vllm_server_timeout default


def test_a_base_url_on_this_machine_is_probed_at_its_port():
    probe = Probe(listening=False)
    j = server("vllm_server_base_url=http://localhost:20901")
    assert found(j, probe.facts(), code="rlhf.vllm.server_unreachable") == [
        ("error", "rlhf.vllm.server_unreachable",
         UNREACHABLE.format(at="http://localhost:20901", waited=""))]
    assert probe.asked == [("localhost", 20901, 0.0)]


def test_the_real_probe_tells_a_listening_port_from_a_closed_one():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        facts = Facts(here=True, has_module=lambda name: True)
        assert found(server(f"vllm_server_port={port}"), facts, code="rlhf.vllm.server_unreachable") == []
    assert found(server(f"vllm_server_port={port}"), facts, code="rlhf.vllm.server_unreachable") == [
        ("error", "rlhf.vllm.server_unreachable", UNREACHABLE.format(at=f"127.0.0.1:{port}", waited=""))]


def test_gkd_gets_grpos_server_rules():
    # _init_rollout runs for rlhf_support_vllm_types = ['grpo', 'gkd'] (3.10+, 4.x)
    assert [c for _, c, _ in found(server("vllm_server_host=null", kind="gkd"))] == ["rlhf.vllm.server_host"]
    assert [c for _, c, _ in found(server("vllm_server_port=0", kind="gkd"))] == ["rlhf.vllm.server_port"]
    assert [c for _, c, _ in found(server("vllm_mode=null", kind="gkd"))] == ["rlhf.vllm.mode"]
    # ms-swift 3.9 had no vLLM for GKD: its vllm flags are read by nobody
    assert found(server("vllm_mode=null", kind="gkd", version="3.9"), code="rlhf.vllm.mode") == []


# --- 4a. vllm_mode required only from ms-swift 3.11 ---------------------------------------------

MODE_REQUIRED = ("error", "rlhf.vllm.mode", "use_vllm true without vllm_mode: ms-swift stops ('vllm_mode is required')")


@pytest.mark.parametrize("version,required", [("3.1", False), ("3.4", False), ("3.5", False), ("3.10", False),
                                              ("3.11", True), ("3", True), ("3.12.6", True), ("4", True)])
def test_use_vllm_without_a_mode_by_minor(version, required):
    got = found(job("grpo_colocate", "vllm_mode=null", version=version), code="rlhf.vllm.mode")
    assert got == ([MODE_REQUIRED] if required else [])


# --- 4b. 3.1-3.4 GRPO: the GPUs beyond NPROC_PER_NODE are vLLM's --------------------------------


def _indivisible(j) -> list[str]:
    return [c for _, c, _ in found(j) if c == "layout.nproc.indivisible"]


@pytest.mark.parametrize("version,sets,refused", [
    ("3.1", ("use_vllm=true",), False),
    ("3.4", ("use_vllm=true", "vllm_device=[auto]"), False),
    ("3.1", ("use_vllm=false",), True),                   # no vLLM: the 4th GPU is nobody's
    ("3.5", ("use_vllm=true",), True),                    # 3.5+: colocate/server, no spare-GPU vLLM
    ("3.4", ("use_vllm=true", "vllm_server_host=10.0.0.5"), True),  # an external server
])
def test_old_grpo_nproc_3_on_4_gpus(version, sets, refused):
    j = job("grpo_colocate", "launch.gpus=0,1,2,3", "launch.nproc_per_node=3", "vllm_mode=null",
            "vllm_gpu_memory_utilization=null", "sleep_level=null", "global_batch_size=null",
            "num_generations=4", *sets, version=version)
    assert _indivisible(j) == (["layout.nproc.indivisible"] if refused else [])


@pytest.mark.parametrize("version,sets,device_map", [
    ("3.3", ("use_vllm=true",), False),           # USE_FAST_INFERENCE=1: is_mp() False, one GPU a rank
    ("3.5", ("use_vllm=true",), False),
    ("3.4", ("use_vllm=false", "use_lmdeploy=true"), False),
    ("3.5", ("use_vllm=false", "use_lmdeploy=true"), True),   # 3.5 sets it for vLLM only
    ("3.6", ("use_vllm=true",), True),            # 3.6 dropped it: two GPUs a rank is device_map
])
def test_old_grpo_with_fast_inference_is_never_device_map(version, sets, device_map):
    # 8 GPUs, 4 training ranks and 4 inference workers: ms-swift 3.2-3.4's async layout
    j = job("grpo_colocate", "launch.gpus=0,1,2,3,4,5,6,7", "launch.nproc_per_node=4", "vllm_mode=null",
            "vllm_gpu_memory_utilization=null", "sleep_level=null", "global_batch_size=null",
            "num_generations=4", "deepspeed=zero2", *sets, version=version)
    codes = {c for _, c, _ in found(j) if c.startswith(("layout.device_map", "rlhf.vllm.device_map"))}
    assert bool(codes) == device_map, codes


def test_sft_on_3_1_is_still_indivisible():
    j = job("single", "launch.gpus=0,1,2,3", "launch.nproc_per_node=3", "global_batch_size=null", version="3.1")
    assert _indivisible(j) == ["layout.nproc.indivisible"]


# --- 3. DPO resumed from an SFT checkpoint ------------------------------------------------------

SFT_ARGS = {"model": "Qwen/Qwen3-8B", "tuner_type": "lora", "lora_rank": 8, "lora_alpha": 32}


def checkpoint(root: Path, saved: dict | None, *, in_run_dir: bool = False) -> Path:
    ckpt = root / "v0-20260212-195919" / "checkpoint-4578"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 32, "peft_type": "LORA"}))
    if saved is not None:
        (ckpt.parent if in_run_dir else ckpt).joinpath("args.json").write_text(json.dumps(saved))
    return ckpt


def resume_error(ckpt: Path, args_path: Path, kind: str = "dpo") -> tuple[str, str, str]:
    return ("error", "rlhf.resume_sft_checkpoint",
            f"resume_from_checkpoint {ckpt} is an SFT checkpoint ({args_path} has no rlhf_type): resuming it "
            f"continues the SFT run's adapter as a {kind} run, and with no ref_adapters the reference model is the "
            "base model, not the SFT model")


@pytest.mark.parametrize("kind", ["dpo", "kto", "grpo"])
def test_resuming_an_sft_checkpoint_is_refused(tmp_path, kind):
    ckpt = checkpoint(tmp_path, SFT_ARGS)
    preset = {"dpo": "dpo", "kto": "kto", "grpo": "grpo_colocate"}[kind]
    j = job(preset, f"resume_from_checkpoint={ckpt}")
    assert found(j, code="rlhf.resume_sft_checkpoint") == [resume_error(ckpt, ckpt / "args.json", kind)]
    [hint] = [f.hint for f in run_checks(j, Facts(here=False)) if f.code == "rlhf.resume_sft_checkpoint"]
    assert hint == (f"start {kind} from it instead: --adapters {ckpt} --ref_adapters {ckpt} (ms-swift's two-stage "
                    f"recipe), or lorakit rlhf --adapters {ckpt} (adds ref_adapters); drop resume_from_checkpoint")


def test_the_run_dirs_args_json_counts_too(tmp_path):
    ckpt = checkpoint(tmp_path, SFT_ARGS, in_run_dir=True)
    assert found(job("dpo", f"resume_from_checkpoint={ckpt}"), code="rlhf.resume_sft_checkpoint") == [
        resume_error(ckpt, ckpt.parent / "args.json")]


@pytest.mark.parametrize("saved,sets", [
    ({**SFT_ARGS, "rlhf_type": "dpo"}, ()),     # a DPO checkpoint: resuming it is the point
    (None, ()),                                  # no args.json: nothing says it is SFT's
    (SFT_ARGS, ("ref_adapters=SFT",)),           # the reference is given
    (SFT_ARGS, ("tuner_type=full",)),            # full: ref_model is the model itself
    (SFT_ARGS, ("rlhf_type=orpo",)),             # ORPO has no reference model
])
def test_resume_that_is_fine(tmp_path, saved, sets):
    ckpt = checkpoint(tmp_path, saved)
    sets = tuple(s.replace("SFT", str(ckpt)) for s in sets)
    assert found(job("dpo", f"resume_from_checkpoint={ckpt}", *sets), code="rlhf.resume_sft_checkpoint") == []


# --- the CLI: exit 2 and the exact text ---------------------------------------------------------


def _cli(tmp_path: Path, flags: list[str], version: str = "4") -> tuple[int, list[str]]:
    preset = tmp_path / "rlhf.yaml"
    preset.write_text("extends: single\ncommand: rlhf\nlaunch:\n  gpus: null\nargs:\n  global_batch_size: null\n"
                      "  dataset: null\n")
    result = run_cli(["validate", "-p", str(preset), "--swift-version", version, "--", *flags],
                     env={"NO_COLOR": "1", "COLUMNS": "300"})
    return result.code, result.stderr.splitlines()


def test_cli_colocate_with_a_rollout_host(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, lines = _cli(tmp_path, ["--rlhf_type", "grpo", "--reward_funcs", "accuracy", "--use_vllm", "true",
                                  "--vllm_mode", "colocate", "--vllm_server_host", "172.18.132.22"], "3.5")
    assert code == 2
    at = lines.index("error[rlhf.vllm.mode_conflict] args.vllm_server_host (-- extra flags): " + CONFLICT.format(
        switch="; ms-swift 3.5-3.6 switch vllm_mode to server", where="172.18.132.22 port 8000 (vllm_server_port)"))
    assert lines[at + 1] == "  hint: " + CONFLICT_HINT


def test_cli_gkd_rollout_port_nothing_listens_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: a connect is refused
        code, lines = _cli(tmp_path, ["--rlhf_type", "gkd", "--teacher_model", "Qwen/Qwen3-8B", "--use_vllm", "true",
                                      "--vllm_mode", "server", "--vllm_server_host", "127.0.0.1",
                                      "--vllm_server_port", str(port)], "3")
    assert code == 2
    at = lines.index("error[rlhf.vllm.server_unreachable] args.vllm_server_port (-- extra flags): "
                     + UNREACHABLE.format(at=f"127.0.0.1:{port}", waited=""))
    assert lines[at + 1] == "  hint: " + UNREACHABLE_HINT.format(port=port)


def test_cli_dpo_resuming_an_sft_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = checkpoint(tmp_path, SFT_ARGS)
    rel = "v0-20260212-195919/checkpoint-4578"
    code, lines = _cli(tmp_path, ["--rlhf_type", "dpo", "--train_type", "lora", "--resume_from_checkpoint", rel,
                                  "--resume_only_model"])
    assert code == 2
    # lorakit renders the local path absolute (paths.absolute), and names it so
    assert ckpt == tmp_path / rel
    message = resume_error(ckpt, ckpt / "args.json")[2]
    at = lines.index(f"error[rlhf.resume_sft_checkpoint] args.resume_from_checkpoint (-- extra flags): {message}")
    assert lines[at + 1] == (f"  hint: start dpo from it instead: --adapters {ckpt} --ref_adapters {ckpt} (ms-swift's "
                             f"two-stage recipe), or lorakit rlhf --adapters {ckpt} (adds ref_adapters); drop "
                             "resume_from_checkpoint")


# --- ms-swift's own RLHFArguments._init_rollout agrees (3.12.6 and 4.6.0) -------------------------

# Runs ms-swift's _init_rollout on the fields it reads (the dataclass's __post_init__ would load a
# model). Two stand-ins, neither the code under test: vLLM itself (not installed here; the check is
# the connection, VLLMClient.check_server) and msgspec, which the trainer utils import for vLLM.
PROBE = textwrap.dedent("""
    import json, sys, types
    sys.modules.setdefault("msgspec", types.SimpleNamespace(field=lambda *a, **k: None, Struct=object))
    import swift
    if swift.__version__.startswith("4"):
        from swift.arguments import RLHFArguments
        import swift.rlhf_trainers.vllm_client as vc
    else:
        from swift.llm.argument import RLHFArguments
        import swift.trainers.rlhf_trainer.vllm_client as vc
    vc.is_vllm_available = lambda: True
    out = {}
    for mode in ("colocate", "server", None):
        a = object.__new__(RLHFArguments)
        vars(a).update(rlhf_type="gkd", use_vllm=True, vllm_mode=mode, vllm_server_host=["127.0.0.1"],
                       vllm_server_port=[int(sys.argv[1])], vllm_server_base_url=None, vllm_server_timeout=1.0,
                       vllm_server_group_port=None, async_generate=False, vllm_tensor_parallel_size=1,
                       vllm_max_model_len=None)
        try:
            a._init_rollout()
            out[str(mode)] = "ok"
        except Exception as e:
            out[str(mode)] = type(e).__name__ + ": " + str(e)
    print(json.dumps(out))
""")


@pytest.mark.real
@pytest.mark.parametrize("major", [4, 3])
def test_ms_swifts_init_rollout_fails_where_lorakit_refuses(tmp_path, major):
    python = sys.executable if major == 4 else swift3_python()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        port = closed.getsockname()[1]
        (tmp_path / "probe.py").write_text(PROBE)
        done = subprocess.run([python, str(tmp_path / "probe.py"), str(port)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
        facts = Facts(here=True, has_module=lambda name: True)
        ours = {mode: [c for _, c, _ in found(server(f"vllm_mode={mode}", f"vllm_server_port={port}", kind="gkd"),
                                               facts) if c.startswith("rlhf.vllm.")]
                for mode in ("colocate", "server", "null")}
    assert done.returncode == 0, done.stderr[-2000:]
    unreachable = f"ConnectionError: Servers not reachable after 1.0s: ['http://127.0.0.1:{port}']"
    # colocate with a host: ms-swift connects to the server all the same
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "colocate": unreachable, "server": unreachable,
        "None": "ValueError: vllm_mode is required when use_vllm is true"}
    assert ours == {"colocate": ["rlhf.vllm.mode_conflict"], "server": ["rlhf.vllm.server_unreachable"],
                    "null": ["rlhf.vllm.mode"]}


# --- GRPO with one generation per prompt (#3980) --------------------------------------------------

ONE_GENERATION = ("num_generations 1: GRPO compares each prompt's completions with one another, so it needs at "
                  "least 2 (ms-swift stops: 'num_generations must be greater than 1 for GRPO')")


@pytest.mark.parametrize("n", ["1", "0"])
def test_grpo_with_fewer_than_two_generations_is_refused(n):
    j = job("grpo_colocate", f"num_generations={n}")
    assert found(j, code="rlhf.grpo.generations") == [
        ("error", "rlhf.grpo.generations", ONE_GENERATION.replace("num_generations 1", f"num_generations {n}"))]


def test_one_generation_with_a_teacher_is_opd_and_passes():
    # OPD-RL: the teacher scores the one completion (4.6.0 _check_teacher returns before the test)
    j = job("grpo_colocate", "num_generations=1", "teacher_model=Qwen/Qwen3-8B")
    assert found(j, code="rlhf.grpo.generations") == []


def test_one_generation_cites_ms_swifts_own_refusal():
    lines = swift_source("arguments/rlhf_args.py")
    assert lines[408].strip() == "if self.rlhf_type == 'grpo' and self.num_generations == 1:"
    assert lines[409].strip() == "raise ValueError('num_generations must be greater than 1 for GRPO')"


# --- GRPO trainer that sees every GPU of the machine (#5592) ---------------------------------------

UNLISTED = ("no CUDA_VISIBLE_DEVICES and no NPROC_PER_NODE on a machine with 2 GPUs: one process sees all 2 and "
            "splits the model across them (device_map); ms-swift stops with 'GRPO with vLLM is not compatible "
            "with `device_map`'")


def machine(gpus: int) -> Facts:
    return Facts(here=True, has_module=lambda name: True, gpu_count=lambda: gpus, listening=lambda *a: True)


@pytest.mark.parametrize("version,gpus,refused", [("3.12", 2, True), ("4", 2, True), ("4", 1, False),
                                                  ("3.5", 2, False)])  # 3.1-3.5: USE_FAST_INFERENCE, no device_map
def test_grpo_server_mode_on_a_machine_of_gpus_nobody_named(version, gpus, refused):
    j = server("launch.gpus=null", "launch.nproc_per_node=null", "vllm_server_host=10.0.0.5", version=version)
    got = found(j, machine(gpus), code="rlhf.vllm.device_map")
    assert got == ([("error", "rlhf.vllm.device_map", UNLISTED)] if refused else [])
    # one mistake, one finding: the sft view's device_map warning does not repeat it
    assert found(j, machine(gpus), code="layout.device_map.implicit") == []


def test_named_gpus_or_a_dry_run_for_elsewhere_are_not_counted():
    named = server("launch.gpus=0", "launch.nproc_per_node=null", "vllm_server_host=10.0.0.5")
    assert found(named, machine(2), code="rlhf.vllm.device_map") == []
    unlisted = server("launch.gpus=null", "launch.nproc_per_node=null", "vllm_server_host=10.0.0.5")
    assert found(unlisted, Facts(here=False, gpu_count=lambda: 2), code="rlhf.vllm.device_map") == []


def test_the_device_map_refusal_is_ms_swifts_own():
    lines = swift_source("arguments/rlhf_args.py")
    assert lines[541].strip() == "if is_mp() and self.use_vllm:"
    assert lines[542].strip() == "raise ValueError('GRPO with vLLM is not compatible with `device_map`. '"


# --- GRPO with no reward: a rollout server may run a gym env --------------------------------------


def test_no_reward_in_server_mode_warns_for_a_gym_env():
    # ms-swift's examples/train/grpo/external/vllm_gym.sh: the gym env on the rollout is the reward
    j = server("reward_funcs=null", "vllm_server_host=10.0.0.5")
    assert found(j, code="rlhf.grpo.rewards") == [
        ("warning", "rlhf.grpo.rewards", "GRPO with no reward_funcs or reward_model: ms-swift stops ('You must "
         "specify reward_funcs or reward_model') unless the rollout server runs a gym env (swift rollout "
         "--use_gym_env true / --gym_env)")]


def test_no_reward_in_colocate_mode_is_refused():
    j = job("grpo_colocate", "reward_funcs=null")
    assert found(j, code="rlhf.grpo.rewards") == [
        ("error", "rlhf.grpo.rewards", "GRPO with no reward: neither reward_funcs nor a reward_model is set")]
    assert found(job("grpo_colocate", "reward_funcs=null", "teacher_model_server=http://10.0.0.5:8000"),
                 code="rlhf.grpo.rewards") == []
