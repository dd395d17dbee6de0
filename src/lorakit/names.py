"""One internal spelling per ms-swift flag, whatever the preset or the version wrote.

Internally lorakit uses ms-swift 4.x names; `render` writes the target version's spelling
(swiftflags.canonical_for_version, which knows every rename between 3.12.6 and 4.6.0). Renames
inside a major (3.6's eval_datasets -> eval_dataset) are in the flag history, and the names
ms-swift 2.x used are OLD_NAMES: lorakit does not accept them, it points to the new name.
"""

from __future__ import annotations

from lorakit.swiftflags import RENAMED

# 3.x name -> 4.x name: e.g. ms-swift 4.0 renamed train_type to tuner_type with no alias, so
# each version's parser rejects the other spelling (`ValueError: remaining_argv`).
V3_TO_V4 = {old: versions[4] for old, versions in RENAMED.items() if 4 in versions}

# ms-swift 2.x flag -> the flag that replaced it in 3.0 (lorakit's internal, 4.x, spelling),
# for did-you-mean only. Read from 2.6.1's swift/llm/utils/argument.py (SftArguments,
# ExportArguments) against 3.0.3's argument classes. Sources:
#   [note] docs/source_en/Instruction/ReleaseNote3.0.md, "Parameter Differences" (renamed ...);
#   [2.x]  2.6.1 already treated the old name as a deprecated alias of the new one
#          (ArgumentsBase.handle_compatibility copies it over, or `# compatibility. (Deprecated)`);
#   [same] same field, same meaning in 2.6.1 and 3.0 (the docstrings and uses match).
# Value formats can differ (dtype bf16 -> torch_dtype bfloat16; use_flash_attn true -> attn_impl
# flash_attn): the hint names the flag, `swift sft --help` has its values.
OLD_NAMES: dict[str, str] = {
    # [note]
    "model_id_or_path": "model",
    "sft_type": "tuner_type",  # 3.x train_type (spelled for the target major)
    "template_type": "template",
    "quantization_bit": "quant_bits",
    "check_model_is_latest": "check_model",
    "batch_size": "per_device_train_batch_size",
    "eval_batch_size": "per_device_eval_batch_size",
    "use_flash_attn": "attn_impl",
    "bnb_4bit_comp_dtype": "bnb_4bit_compute_dtype",
    "dtype": "torch_dtype",
    "add_output_dir_suffix": "add_version",
    "lora_target_modules": "target_modules",
    # [2.x]
    "lora_target_regex": "target_regex",
    "lora_modules_to_save": "modules_to_save",
    "lora_dropout_p": "lora_dropout",
    "boft_target_modules": "target_modules",
    "vera_target_modules": "target_modules",
    "ia3_target_modules": "target_modules",
    "boft_modules_to_save": "modules_to_save",
    "vera_modules_to_save": "modules_to_save",
    "ia3_modules_to_save": "modules_to_save",
    "deepspeed_config_path": "deepspeed",
    "neftune_alpha": "neftune_noise_alpha",
    "only_save_model": "save_only_model",
    "push_hub_strategy": "hub_strategy",
    "evaluation_strategy": "eval_strategy",
    "custom_train_dataset_path": "dataset",
    "custom_val_dataset_path": "val_dataset",
    "model_cache_dir": "model",
    "device_map_config": "device_map",
    "device_map_config_path": "device_map",
    "merge_lora_and_save": "merge_lora",  # swift export
    # [same]
    "dataset_test_ratio": "split_dataset_ratio",
    "preprocess_num_proc": "dataset_num_proc",
    "dataset_seed": "data_seed",
    "lora_bias_trainable": "lora_bias",
    "lora_lr_ratio": "lorap_lr_ratio",
    "init_lora_weights": "init_weights",
    "device_max_memory": "max_memory",  # ms-swift 3.2 and later
    "vit_use_gc": "vit_gradient_checkpointing",  # ms-swift 3.5 and later
    "to_megatron": "to_mcore",  # swift export, 3.2 and later
}


def normalise_arg_key(key: str) -> str:
    """'--lora-rank' -> 'lora_rank'; 'train_type' -> 'tuner_type'."""
    name = key.lstrip("-").replace("-", "_")
    return V3_TO_V4.get(name, name)


def version_spelling(key: str) -> str | None:
    """The name as written, when it is one major's spelling of a flag the other major renamed
    ('train_type', 'tuner_type'); None for any other name."""
    name = key.lstrip("-").replace("-", "_")
    return name if name in V3_TO_V4 or name in V3_TO_V4.values() else None


def spelled_for(name: str, major: int, command: str = "sft") -> str:
    """The flag name the target ms-swift major version accepts for `command`."""
    from lorakit.swiftflags import canonical_for_version

    try:
        return canonical_for_version(name, major, command)
    except ValueError:  # no snapshot for that major/command: keep the internal name
        return name
