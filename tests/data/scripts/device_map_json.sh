# 4 DDP ranks x 2 GPUs each by device_map (ms-swift examples/train/multi-gpu/ddp_device_map)
[[ -d output ]] || mkdir -p output
nproc_per_node=4

CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 \
NPROC_PER_NODE=$nproc_per_node \
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --tuner_type lora \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-zh#1000' \
    --torch_dtype bfloat16 \
    --gradient_checkpointing true \
    --gradient_checkpointing_kwargs '{"use_reentrant": false}' \
    --per_device_train_batch_size 1 \
    --learning_rate 1e-4 \
    --lora_rank 8 \
    --lora_alpha 32 \
    --target_modules q_proj k_proj v_proj o_proj \
    --gradient_accumulation_steps $(expr 16 / $nproc_per_node) \
    --output_dir output
