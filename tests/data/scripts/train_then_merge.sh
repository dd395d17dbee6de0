#!/bin/bash
# train, merge, try it: three swift commands in one script
CKPT=output/v0-20250101-000000/checkpoint-100

CUDA_VISIBLE_DEVICES=0 \
swift sft \
    --model Qwen/Qwen2.5-0.5B-Instruct \
    --tuner_type lora \
    --dataset 'swift/self-cognition#500' \
    --model_author swift \
    --model_name swift-robot \
    --num_train_epochs 1 \
    --max_steps 100 \
    --output_dir output

swift export \
    --adapters $CKPT \
    --merge_lora true \
    --output_dir merged

CUDA_VISIBLE_DEVICES=0 \
swift infer \
    --model merged \
    --stream true \
    --max_new_tokens 2048
