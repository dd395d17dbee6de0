# values YAML would retype if written bare: no, yes, null, ~, a date, a leading "- ", JSON null
swift sft \
    --model Qwen/Qwen2.5-7B-Instruct \
    --system "- a list item: #1 'quoted' \"dq\" ünï 中文" \
    --response_prefix '' \
    --template null \
    --run_name '~' \
    --eval_strategy no \
    --hub_model_id 'yes' \
    --logging_dir '2024-01-01' \
    --report_to none \
    --lora_dropout .5 \
    --max_grad_norm 1_0 \
    --gradient_checkpointing_kwargs '{"use_reentrant": false, "x": null, "y": [1, 2.0, "no"]}' \
    --model_kwargs '{"a": {"b": "c"}}' \
    --output_dir 'out put'
