"""The schedulers `lorakit train --on` reads a node layout from (lorakit.injob does the reading).
Apart from injob so that `train --help` and a dry-run name them without importing it."""

PLATFORMS = ("auto", "slurm", "kubeflow", "pytorchjob", "volcano", "dlc", "skypilot")
NAMES = {"slurm": "SLURM", "kubeflow": "Kubeflow Trainer v2 (TrainJob)", "pytorchjob": "Kubeflow PyTorchJob (v1)",
         "volcano": "Volcano (pytorch plugin)", "dlc": "Alibaba PAI-DLC", "skypilot": "SkyPilot"}
