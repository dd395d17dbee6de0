"""GRPO server mode as one paired launch: `swift rollout` on its GPUs, then `swift rlhf`.

ms-swift's recipe (docs, GRPO getting started) is two terminals: `CUDA_VISIBLE_DEVICES=0 swift
rollout --model M` first, then `CUDA_VISIBLE_DEVICES=1,.. NPROC_PER_NODE=N swift rlhf --vllm_mode
server --vllm_server_host H --vllm_server_port P`. Started too early, the trainer gives up after
vllm_server_timeout; left alone, a rollout outlives a crashed trainer and holds its GPU. Here:

- the rollout job is derived from the trainer's: its model, model_type, template and dtype, the
  vLLM flags `swift rollout` also has, --host/--port from vllm_server_host/port, and the GPUs of
  lorakit's own key rollout_gpus (never rendered to ms-swift);
- lorakit starts it through the keeper (lorakit.launch), waits for GET /health/ (both 3.x and 4.x
  rollout servers route it: pipelines/infer/rollout.py), bounded, with the rollout's last lines
  when it dies or never answers; then starts the trainer through a second keeper;
- Ctrl-C/SIGTERM go to both; when either exits, the other is stopped (SIGTERM, the keeper's grace,
  then SIGKILL of its whole tree): no GPU is left held.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Optional

from lorakit import report
from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.findings import INFO, Finding
from lorakit.job import Job, Launch
from lorakit.render import Command, render, shell_text

# Flags of the trainer's job the rollout gets as they are (when `swift rollout` has them)
MODEL_FLAGS = ("model", "model_type", "model_revision", "template", "torch_dtype", "max_model_len",
               "use_hf", "hub_token", "trust_remote_code")
NOT_FOR_ROLLOUT = ("vllm_mode", "vllm_server_host", "vllm_server_port", "vllm_server_base_url",
                   "vllm_server_timeout", "vllm_server_group_port")
TAIL_LINES = 30
POLL = 0.2


def is_paired(job: Job) -> bool:
    return job.command == "rlhf" and bool(job.args.get("rollout_gpus"))


def _rollout_flags(job: Job) -> set:
    from lorakit import swiftflags

    return set(swiftflags.load_flags(job.swift_major, "rollout"))


def rollout_job(job: Job) -> Job:
    """The `swift rollout` half, derived from the trainer's job."""
    from lorakit.checks.rlhf import gpu_list

    known = _rollout_flags(job)
    args = {k: job.args[k] for k in MODEL_FLAGS if k in job.args and k in known}
    args.update({k: v for k, v in job.args.items()
                 if k.startswith("vllm_") and k not in NOT_FOR_ROLLOUT and k in known})
    host = str(job.args.get("vllm_server_host", "127.0.0.1"))
    args["host"], args["port"] = host, job.args.get("vllm_server_port", 8000)
    gpus = gpu_list(job.args.get("rollout_gpus"))
    notes = []
    if len(gpus) > 1 and "vllm_tensor_parallel_size" not in args and "vllm_data_parallel_size" not in args:
        args["vllm_data_parallel_size"] = len(gpus)
        notes.append(Finding(INFO, "rollout.data_parallel",
                             f"vllm_data_parallel_size {len(gpus)}: one vLLM replica per rollout GPU",
                             hint="set vllm_tensor_parallel_size to split one model over them instead",
                             key="args.rollout_gpus", file=job.source_of("args.rollout_gpus")))
    launch = Launch(gpus=",".join(gpus), gpus_source=job.source_of("args.rollout_gpus"),
                    device_var=job.launch.device_var)
    sources = {f"args.{k}": job.source_of(f"args.{k}") for k in args}
    return replace(job, command="rollout", args=args, launch=launch, sources={**job.sources, **sources},
                   adjustments=tuple(notes))


def health_url(job: Job) -> str:
    host = str(job.args.get("vllm_server_host", "127.0.0.1"))
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{host}:{job.args.get('vllm_server_port', 8000)}/health/"


def dry_text(rollout: Command, trainer: Command, url: str) -> str:
    """Both commands, pasteable into bash: the rollout in the background, a wait for its health."""
    return (f"# GRPO server mode, one paired launch: swift rollout first, the trainer once {url} answers\n"
            + shell_text(rollout).rstrip("\n") + " &\n"
            + f"until curl -sf {url} >/dev/null; do sleep 2; done\n"
            + shell_text(trainer))


def tail(job: Job, *, dry: bool, fmt: Optional[str], strict: bool, grace: float, wait: float) -> int:
    from lorakit.cli.run import check_or_exit, emit

    if fmt not in (None, "text", "json"):
        raise LorakitError(f"--format {fmt}: GRPO server mode prints text or json (two commands)",
                           hint="drop --format, or --format json")
    if fmt not in (None, "text") and not dry:
        raise LorakitError(f"--format {fmt} only shapes what --dry-run prints; it launches nothing", hint="add --dry-run")
    findings = check_or_exit(job, strict, here=not dry)
    rollout = rollout_job(job)
    findings += check_or_exit(rollout, strict, here=not dry)
    rcmd, tcmd = render(rollout, os.environ), render(job, os.environ)
    url = health_url(job)
    if dry and fmt == "json":
        import json

        from lorakit import exports

        both = {"rollout": exports.launch_dict(rollout, rcmd, findings), "rlhf": exports.launch_dict(job, tcmd, findings),
                "health": url}
        return emit(json.dumps(both, indent=2, ensure_ascii=False) + "\n")
    if dry:
        return emit(dry_text(rcmd, tcmd, url))
    port_is_free(rollout)
    from lorakit import launch
    from lorakit.cli.run import End

    if launch.resolve_swift(rcmd.child_env(os.environ)) is None:  # before the record: nothing started
        raise EnvironmentProblem("ms-swift's `swift` command was not found on PATH",
                                 hint="pip install ms-swift in this environment")

    # the trainer's record, as any rlhf launch's: `lorakit runs` lists it, --from replays it (the
    # job is the paired one, so the replay starts the rollout too), its end names the checkpoint
    end = End(job, tcmd)
    end.start()
    rc = launch_pair(rcmd, tcmd, url=url, wait=wait, grace=grace, caught=end.caught)
    end.finish(rc)
    return rc


def port_is_free(rollout: Job) -> None:
    """RolloutArguments inherits DeployArguments, whose __post_init__ moves a taken port to a free one
    without a word (deploy_args.py find_free_port): the trainer would then ask whatever holds the port,
    and the health wait would poll it (or answer for it)."""
    from lorakit.cli.deploy import port_free
    from lorakit.values import as_port

    host, port = str(rollout.args["host"]), as_port(rollout.args["port"])
    if port is None:
        raise LorakitError(f"vllm_server_port {rollout.args['port']!r} is not a TCP port: 1 to 65535",
                           hint="set vllm_server_port: 8000 (or another free port)")
    try:
        free = port_free(host, port)
    except OSError as exc:
        raise EnvironmentProblem(f"swift rollout cannot listen on {host}:{port}: {exc.strerror or exc}",
                                 hint="set vllm_server_host: 127.0.0.1 (the rollout on this machine)") from None
    if not free:
        raise EnvironmentProblem(
            f"vllm_server_port {port} on {host} is taken: swift rollout would move to another port without "
            f"saying so (DeployArguments find_free_port), and the trainer would talk to whatever holds {port}",
            hint="stop what listens there (an earlier swift rollout?), or --set vllm_server_port=ANOTHER")


# ---- the launch ---------------------------------------------------------------------------------

class _Side:
    """One keeper (lorakit.launch's): its process, the child's pid, and the last lines it wrote."""

    def __init__(self, name: str, command: Command, grace: float, keep_tail: bool):
        from lorakit import launch

        self.name = name
        self.lines: collections.deque = collections.deque(maxlen=TAIL_LINES)
        self.partial = {1: "", 2: ""}  # per pipe: a line not yet ended (chunks split lines anywhere)
        self.done = threading.Event()
        output = self._output if keep_tail else None
        env = command.child_env(os.environ)
        swift = launch.resolve_swift(env)
        if swift is None:
            raise EnvironmentProblem("ms-swift's `swift` command was not found on PATH",
                                     hint="pip install ms-swift in this environment")
        self.proc, status = launch._start(command.argv, env, grace, output)
        self.pumps = []
        if output is not None:
            for pipe, fd in ((self.proc.stdout, 1), (self.proc.stderr, 2)):
                thread = threading.Thread(target=launch._pump, args=(pipe, fd, output, self.done), daemon=True)
                thread.start()
                self.pumps.append(thread)
        self.pid = launch._started(self.proc, status, command.argv)

    def _output(self, fd: int, data: bytes) -> None:
        (sys.stdout if fd == 1 else sys.stderr).buffer.write(data)
        (sys.stdout if fd == 1 else sys.stderr).flush()
        *whole, self.partial[fd] = (self.partial[fd] + data.decode(errors="replace")).split("\n")
        self.lines.extend(whole)

    def poll(self) -> Optional[int]:
        return self.proc.poll()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Ask the keeper to stop the tree (it waits `grace`, then SIGKILLs it all); its code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait()
        self.done.set()
        for thread in self.pumps:
            thread.join(timeout=5)
        return rc

    def last_lines(self) -> str:
        lines = [*self.lines, *(p for p in self.partial.values() if p)]
        return "\n".join(f"  | {line}" for line in lines[-10:]) or "  | (it wrote nothing)"


def _healthy(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_healthy(rollout: _Side, url: str, wait: float, pending: list, caught: list) -> Optional[int]:
    """None once healthy; else the code to exit with (a signal came, or the rollout died)."""
    deadline = time.monotonic() + wait
    while True:
        if pending:  # Ctrl-C while the rollout starts: stop it, exit as the signal says
            caught.append(pending[0])
            rollout.stop(pending[0])
            return 128 + pending[0]
        rc = rollout.poll()
        if rc is not None:
            rollout.stop()
            report.note(f"swift rollout exited with code {rc} before {url} answered; its last lines:\n"
                        + rollout.last_lines())
            return rc or 1
        if _healthy(url):
            return None
        if time.monotonic() > deadline:
            rollout.stop()
            raise EnvironmentProblem(f"swift rollout did not answer {url} within {wait:.0f} s (stopped it); "
                                     "its last lines:\n" + rollout.last_lines(),
                                     hint="a large model loads slowly: raise --rollout-wait; or check the lines above")
        time.sleep(POLL)


def launch_pair(rollout_cmd: Command, train_cmd: Command, *, url: str, wait: float, grace: float,
                caught: Optional[list] = None) -> int:
    """Run both halves; the trainer's exit code (the rollout's when it dies first, 128+N on signal N).
    caught: the signals lorakit passed on are appended to it (the run record's 'interrupted')."""
    pending: list = []
    caught = caught if caught is not None else []
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            handlers[sig] = signal.signal(sig, lambda signum, _frame: pending.append(signum))
    sides: list = []
    try:
        report.note(f"starting swift rollout ({rollout_cmd.env.get('CUDA_VISIBLE_DEVICES', 'all GPUs')}); "
                    f"the trainer starts once {url} answers")
        rollout = _Side("rollout", rollout_cmd, grace, keep_tail=True)
        sides.append(rollout)
        code = _wait_healthy(rollout, url, wait, pending, caught)
        if code is not None:
            return code
        report.note(f"{url} answers: starting swift rlhf")
        trainer = _Side("rlhf", train_cmd, grace, keep_tail=False)
        sides.append(trainer)
        return _supervise(rollout, trainer, pending, caught)
    finally:
        for side in sides:
            if side.poll() is None:
                side.stop()
        for sig, old in handlers.items():
            signal.signal(sig, old)


def _supervise(rollout: _Side, trainer: _Side, pending: list, caught: list) -> int:
    interrupted = None
    while True:
        while pending:
            interrupted = pending.pop(0)
            caught.append(interrupted)
            for side in (trainer, rollout):
                if side.poll() is None:
                    side.proc.send_signal(interrupted)
        rc = trainer.poll()
        if rc is not None:
            trainer.stop()
            if rollout.poll() is None:
                report.note(f"swift rlhf exited with code {rc}: stopping swift rollout")
            rollout.stop()
            return rc
        rc = rollout.poll()
        if rc is not None and interrupted is None:
            rollout.stop()
            report.note(f"swift rollout exited with code {rc} while training; its last lines:\n"
                        + rollout.last_lines() + "\nlorakit: stopping swift rlhf")
            trainer.stop()
            return rc or 1
        time.sleep(POLL)
