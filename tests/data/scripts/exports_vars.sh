#!/bin/bash
# exports, variables, quoting: the way users' own scripts look
export CUDA_VISIBLE_DEVICES=0,1
export MAX_PIXELS=1003520
export PYTORCH_CUDA_ALLOC_CONF='expandable_segments:True'
MODEL=Qwen/Qwen2.5-VL-7B-Instruct
DATA_DIR=/data/sets
MODULES="q_proj v_proj"
NGPU=2
RANK_R=16
OUT=${OUTPUT_ROOT:-output}/qwen-vl

NPROC_PER_NODE=$NGPU \
swift sft \
    --model "$MODEL" \
    --tuner_type=lora \
    --dataset "${DATA_DIR}/train.jsonl" ${DATA_DIR}/extra.jsonl \
    --val_dataset "$DATA_DIR/val set.jsonl" \
    --system "You are a helpful assistant. Answer briefly." \
    --response_prefix $'<think>\n\n</think>\n\n' \
    --lora_rank=$RANK_R \
    --lora-alpha $((RANK_R * 2)) \
    --lora_drop 0.05 \
    --target_modules $MODULES \
    --use_rslora \
    --no_add_version \
    --learning_rate 5e-5 \
    --weight_decay 0 \
    --max_length 4096 \
    --seed -1 \
    --save_strategy no \
    --per_device_train_batch_size 2 \
    --gradient_accumulation_steps $((16 / NGPU / 2)) \
    --output_dir "$OUT"  # the run's folder
