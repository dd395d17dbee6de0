# ms-swift #5328: a blank line inside the continuation; bash runs swift sft without the rest
CUDA_VISIBLE_DEVICES=0,1,2,3 \
NPROC_PER_NODE=4 \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --tuner_type lora \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \

    --deepspeed zero2 \
    --output_dir output
