CUDA_VISIBLE_DEVICES=0 \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --lora_rank 8 \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \
    --lora-rank 16 \
    --output_dir output
