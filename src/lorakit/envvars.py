"""Every environment variable that changes how ms-swift launches, listed once.

Rendering, the run record and every export read these lists; nothing else names them.
"""

from __future__ import annotations

from typing import Mapping

# ms-swift turns these into torchrun arguments (swift/cli/main.py: get_torchrun_args), and
# CUDA_VISIBLE_DEVICES picks the GPUs. lorakit sets them from the job. A user's own value in the
# shell is a layer (command line > environment > preset), read by lorakit.job; one the job
# does not end up setting is removed from the child's environment.
LAUNCH = ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")

# The job's launch field behind each variable (lorakit.job.Launch).
FIELD = {
    "CUDA_VISIBLE_DEVICES": "gpus",
    "NPROC_PER_NODE": "nproc_per_node",
    "NNODES": "nnodes",
    "NODE_RANK": "node_rank",
    "MASTER_ADDR": "master_addr",
    "MASTER_PORT": "master_port",
}

VAR = {field: var for var, field in FIELD.items()}

# Other accelerators' device lists, which ms-swift sets alongside CUDA_VISIBLE_DEVICES
# (swift/utils/env.py: select_device). A user on an NPU (Ascend) or a Moore Threads GPU names
# devices with these; lorakit reads the first one set when CUDA_VISIBLE_DEVICES is not.
DEVICE_LISTS = ("CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "MUSA_VISIBLE_DEVICES")

# Set by a launcher for the workers it starts, never by a user on purpose. Left over in a shell
# (a debugging session, a job step inside another job) they make ms-swift believe it already
# runs inside a torchrun worker: `RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 swift sft` dies with
# "MASTER_ADDR expected" (swift/utils/env.py: get_dist_setting reads them directly), and
# RAY_SWIFT_ARGS replaces ms-swift's whole argv (swift/ray). lorakit removes them all.
SCRUBBED = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "LOCAL_SIZE", "GROUP_RANK",
            "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "_PATCH_WORLD_SIZE",
            "RAY_SWIFT_ARGS")
SCRUBBED_PREFIXES = ("TORCHELASTIC_",)


def is_scrubbed(name: str) -> bool:
    return name in SCRUBBED or name.startswith(SCRUBBED_PREFIXES)


def scrubbed_in(env: Mapping[str, str]) -> list[str]:
    """The launcher-owned variables present in `env`, in a stable order."""
    return sorted(name for name in env if is_scrubbed(name))
