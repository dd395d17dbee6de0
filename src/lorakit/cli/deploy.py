"""`lorakit deploy`: a trained adapter -> checks -> `swift deploy`, an OpenAI-compatible server,
supervised like training: Ctrl-C/SIGTERM stop the whole server tree (lorakit.launch, keeper).

--adapters takes what `lorakit infer` takes, each optionally as ms-swift's NAME=PATH (served under
that name; arguments/deploy_args.py `_init_adapters`). The port is checked free before ms-swift
starts: ms-swift's DeployArguments.__post_init__ calls find_free_port(port), which moves to
another port without a word when the one asked for is taken, and clients then talk to nothing.
"""

from __future__ import annotations

import socket
from typing import Annotated, Optional

import typer

from lorakit.cli import common as c
from lorakit.cli.infer import (AdaptersOpt, BackendOpt, DryOpt, FormatOpt, ModelOpt, PickOpt, finish, fragment,
                               prepare)
from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.job import Job
from lorakit.values import as_port

EXAMPLES = """
Examples:

  lorakit deploy --adapters output --port 8000

  lorakit deploy --adapters sft=output/v0-20260101-120000 --adapters dpo=dpo_out --infer-backend vllm

  lorakit deploy --adapters output --host 0.0.0.0 --dry-run    (reachable from other machines)
"""


def port_free(host: str, port: int) -> bool:
    """Can a server listen on host:port here? (uvicorn binds host:port; '0.0.0.0' is every address)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as uvicorn binds: a port a stopped server left in TIME_WAIT is free, a listener is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("" if host in ("0.0.0.0", "::") else host, port))
        except OSError:
            return False
    return True


def port_value(job: Job) -> int:
    """The port the server is asked for: 1-65535. 0 is refused too: find_free_port(0) picks a random
    port (swift/utils/env.py), which clients could not know."""
    given = job.args.get("port", 8000)
    port = as_port(given)
    if port is None:
        raise LorakitError(f"port {given!r} is not a TCP port a server can listen on: 1 to 65535",
                           hint="pass --port 8000 (or another free port)")
    return port


def check_port(job: Job) -> None:
    port, host = port_value(job), str(job.args.get("host", "0.0.0.0"))
    try:
        free = port_free(host, port)
    except OSError as exc:  # e.g. a host name that is no address here
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                 hint="pass --host 127.0.0.1 (this machine) or 0.0.0.0 (every interface)") from None
    if not free:
        raise EnvironmentProblem(
            f"port {port} on {host} is taken: ms-swift would move to another free port without saying so "
            f"(DeployArguments find_free_port), and clients would talk to whatever holds {port}",
            hint="stop what listens there, or pass another --port")


def deploy(
    ctx: typer.Context,
    adapters: AdaptersOpt = None,
    model: ModelOpt = None,
    infer_backend: BackendOpt = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port to serve on (default 8000).")] = None,
    host: Annotated[Optional[str], typer.Option("--host", help="Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface).")] = None,
    pick: PickOpt = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="A deploy preset (default: built-in fragments/deploy).")] = None,
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: DryOpt = False,
    fmt: FormatOpt = None,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
) -> int:
    """Serve a trained adapter with `swift deploy` (OpenAI API); flags after `--` go to ms-swift."""
    # as typed, not re-read as a --set YAML value: --host null dropped the flag (ms-swift's default
    # 0.0.0.0, every interface) and --host 'a: b' became a mapping
    more = [(f"args.{k}", v, f"--{k}") for k, v in (("port", port), ("host", host)) if v is not None]
    if host is not None and not host.strip():
        raise LorakitError("--host '' is no address", hint="pass --host 127.0.0.1 (this machine) or 0.0.0.0 (every interface)")
    opts = c.JobOptions(preset or fragment("deploy"), model=model, sets=list(set_ or []), extra=list(ctx.args),
                        swift_version=swift_version)
    job = prepare(opts, list(adapters or []), pick, command="deploy", backend=infer_backend, named=True, more=more)
    if dry_run:
        port_value(job)
    else:
        check_port(job)
    return finish(job, dry=dry_run, fmt=fmt, strict=strict, grace=grace)


deploy.__doc__ = (deploy.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
