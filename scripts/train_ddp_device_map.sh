#!/usr/bin/env bash
# lorakit train -p ddp_device_map, rendered for ms-swift 4.x
set -euo pipefail

# Launch variables this job does not set: one left in your shell would change the
# launch (ms-swift turns NPROC_PER_NODE/NNODES/NODE_RANK/MASTER_* into torchrun
# arguments; CUDA_VISIBLE_DEVICES picks the GPUs).
unset NNODES NODE_RANK MASTER_ADDR MASTER_PORT
# Set by a launcher for the workers it starts: left in your shell they make ms-swift
# believe it already runs inside a torchrun worker. lorakit train removes these, and
# every TORCHELASTIC_* variable too: unset any of those your shell has.
unset RANK LOCAL_RANK WORLD_SIZE LOCAL_WORLD_SIZE LOCAL_SIZE GROUP_RANK GROUP_WORLD_SIZE ROLE_RANK ROLE_NAME ROLE_WORLD_SIZE _PATCH_WORLD_SIZE RAY_SWIFT_ARGS

CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 \
NPROC_PER_NODE=4 \
exec swift sft \
    --model Qwen/Qwen3-8B \
    --tuner_type lora \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' 'AI-ModelScope/alpaca-gpt4-data-zh#500' \
    --torch_dtype bfloat16 \
    --num_train_epochs 1 \
    --per_device_train_batch_size 1 \
    --per_device_eval_batch_size 1 \
    --learning_rate 0.0001 \
    --lora_rank 8 \
    --lora_alpha 32 \
    --target_modules all-linear \
    --gradient_accumulation_steps 4 \
    --split_dataset_ratio 0.01 \
    --eval_steps 50 \
    --save_steps 50 \
    --save_total_limit 2 \
    --logging_steps 5 \
    --max_length 2048 \
    --warmup_ratio 0.05 \
    --dataloader_num_workers 4 \
    --output_dir output \
    --gradient_checkpointing_kwargs '{"use_reentrant": false}'
