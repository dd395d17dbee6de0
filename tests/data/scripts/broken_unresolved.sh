# $BASE_MODEL and $RUN_NAME come from the caller's environment; $(date) runs a command
CUDA_VISIBLE_DEVICES=0 \
swift sft \
    --model $BASE_MODEL \
    --dataset 'AI-ModelScope/alpaca-gpt4-data-en#500' \
    --output_dir "output/$RUN_NAME-$(date +%Y%m%d)"
