"""lorakit: presets -> job -> checks -> command -> process, for ms-swift LoRA runs."""

__version__ = "0.1.0"
