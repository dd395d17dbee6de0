# ms-swift 3.x names: --train_type (4.x: --tuner_type), --metric (4.x: --eval_metric)
CUDA_VISIBLE_DEVICES=0,1 \
NPROC_PER_NODE=2 \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --train_type lora \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \
    --torch_dtype bfloat16 \
    --lora_rank 8 \
    --lora_alpha 32 \
    --target_modules all-linear \
    --split_dataset_ratio 0.01 \
    --metric acc \
    --save_safetensors true \
    --gradient_checkpointing_kwargs '{"use_reentrant":false}' \
    --output_dir output \
    --deepspeed zero2
