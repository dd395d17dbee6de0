CUDA_VISIBLE_DEVICES=0 \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    # --lora_rank 16 \
    --tuner_type lora \
    --output_dir output
