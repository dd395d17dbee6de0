#!/usr/bin/env bash
# lorakit merge -p merge, rendered for ms-swift 4.x
# Replace both paths, or run: lorakit merge --adapters CHECKPOINT [--output-dir DIR]
set -euo pipefail

# Launch variables this job does not set: one left in your shell would change the
# launch (ms-swift turns NPROC_PER_NODE/NNODES/NODE_RANK/MASTER_* into torchrun
# arguments; CUDA_VISIBLE_DEVICES picks the GPUs).
unset CUDA_VISIBLE_DEVICES NPROC_PER_NODE NNODES NODE_RANK MASTER_ADDR MASTER_PORT
# Set by a launcher for the workers it starts: left in your shell they make ms-swift
# believe it already runs inside a torchrun worker. lorakit train removes these, and
# every TORCHELASTIC_* variable too: unset any of those your shell has.
unset RANK LOCAL_RANK WORLD_SIZE LOCAL_WORLD_SIZE LOCAL_SIZE GROUP_RANK GROUP_WORLD_SIZE ROLE_RANK ROLE_NAME ROLE_WORLD_SIZE _PATCH_WORLD_SIZE RAY_SWIFT_ARGS

exec swift export \
    --merge_lora true \
    --adapters /path/to/output/checkpoint-xxx \
    --output_dir /path/to/merged_model
