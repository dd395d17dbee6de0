# NPROC_PER_NODE on its own line, never exported: swift sft does not see it
CUDA_VISIBLE_DEVICES=0,1
export CUDA_VISIBLE_DEVICES
NPROC_PER_NODE=2
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \
    --output_dir output
