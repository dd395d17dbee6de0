# a space after the backslash on the --dataset line
CUDA_VISIBLE_DEVICES=0 \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \ 
    --lora_rank 8 \
    --output_dir output
