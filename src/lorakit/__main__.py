"""`python -m lorakit` and the `lorakit` console script (pyproject.toml [project.scripts]).

The first thing either runs: a Ctrl-C while Python imports Typer and the command (~0.1 s)
raised KeyboardInterrupt in the middle of an import, which printed a traceback (or, inside an
import lock's callback, an "Exception ignored" one, and the run went on). Until cli.app.main
takes over, SIGINT exits at once with 130, the code a shell gives Ctrl-C, and says nothing: no
output has been written and nothing started. A SIGINT that the parent ignores (`nohup`, a
background job in a script) stays ignored.
"""

# _signal is built in (nothing to load; `import signal` builds its enums first, and a Ctrl-C during
# that was still a traceback from this very file); os is loaded by Python's own start-up already
import _signal
import os


def _interrupted_while_loading(signum, frame):
    os._exit(128 + signum)


if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_loading)


def run() -> None:
    from lorakit.cli.app import main

    main()


if __name__ == "__main__":
    run()
