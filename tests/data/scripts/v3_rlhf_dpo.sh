# ms-swift 3.x DPO (examples/train/rlhf/dpo/lora.sh shape)
nproc_per_node=2

CUDA_VISIBLE_DEVICES=0,1 \
NPROC_PER_NODE=$nproc_per_node \
swift rlhf \
    --rlhf_type dpo \
    --model Qwen/Qwen2.5-7B-Instruct \
    --train_type lora \
    --dataset 'hjh0119/shareAI-Llama3-DPO-zh-en-emoji#2000' \
    --torch_dtype bfloat16 \
    --num_train_epochs 1 \
    --per_device_train_batch_size 1 \
    --learning_rate 1e-4 \
    --lora_rank 8 \
    --lora_alpha 32 \
    --target_modules all-linear \
    --beta 0.1 \
    --rpo_alpha 0.1 \
    --gradient_accumulation_steps $(expr 16 / $nproc_per_node) \
    --output_dir output \
    --deepspeed zero2
