"""Re-record the real ms-swift output that tests/test_progress.py replays.

    python tests/data/progress/record.py [WORKDIR]

Runs a 2-step `swift sft` on lorakit.tiny's model (CPU, logging_steps=1) with stdout and stderr
on two pipes, the way `lorakit train` reads them, and writes next to this file:
  swift46_sft.chunks.jsonl  every read: {"t": seconds since start, "fd": 1|2, "b64": bytes}
  swift46_sft.txt           the same bytes in arrival order (what a terminal would have shown)
  swift46_logging.jsonl     the logging.jsonl ms-swift wrote into its output dir
  torchrun_rank1_failure.txt  torchrun 2 ranks of torchrun_rank1_failure.py (rank 1 raises):
                            what `swift sft` prints when one rank of a DDP run fails
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from lorakit.tiny import make_tiny_dataset, make_tiny_model, tiny_swift_args

    work = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lorakit-rec-"))
    model = make_tiny_model(work / "tiny-random-chatml")
    data = make_tiny_dataset(work / "data.jsonl", n=16)
    args = {"model": model, "dataset": data, "output_dir": work / "out", "torch_dtype": "float32",
            "dataloader_num_workers": 0, "max_length": 128, "logging_steps": 1, **tiny_swift_args()}
    argv = ["swift", "sft"] + [x for k, v in args.items() for x in (f"--{k}", str(v))]
    print("recording:", shlex.join(argv), file=sys.stderr)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, 1)
    sel.register(proc.stderr, selectors.EVENT_READ, 2)
    start, chunks = time.monotonic(), []
    while sel.get_map():
        for key, _ in sel.select():
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                sel.unregister(key.fileobj)
                continue
            chunks.append({"t": round(time.monotonic() - start, 3), "fd": key.data,
                           "b64": base64.b64encode(data).decode()})
    assert proc.wait() == 0, "swift sft failed"
    text = b"".join(base64.b64decode(c["b64"]) for c in chunks)
    (HERE / "swift46_sft.chunks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chunks))
    (HERE / "swift46_sft.txt").write_bytes(text)
    (HERE / "swift46_logging.jsonl").write_bytes(next((work / "out").glob("v*/logging.jsonl")).read_bytes())
    failed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             str(HERE / "torchrun_rank1_failure.py")], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert failed.returncode == 1, failed.stdout.decode()
    (HERE / "torchrun_rank1_failure.txt").write_bytes(failed.stdout)


if __name__ == "__main__":
    main()
