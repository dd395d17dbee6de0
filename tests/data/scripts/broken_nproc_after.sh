# ms-swift #3681: NPROC_PER_NODE written after swift sft is an argument, not the environment
CUDA_VISIBLE_DEVICES=0,1 \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --tuner_type lora \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \
    --output_dir output \
    NPROC_PER_NODE=2
