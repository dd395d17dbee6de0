# ms-swift 2.x names, as old blog posts and issues write them
CUDA_VISIBLE_DEVICES=0 \
swift sft \
    --model_id_or_path qwen/Qwen-7B-Chat \
    --sft_type lora \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \
    --lora_target_modules q_proj v_proj \
    --lora_rank 8 \
    --output_dir output
