"""What a saved folder needs to load through remote code where this package is not installed: the processor's code
beside the model's (transformers copies the model file and its relative imports, not the processor's)."""

import json
import os
import shutil


__all__ = ["carry_processor_code"]

PROCESSOR_AUTO_CLASSES = ("AutoProcessor", "AutoImageProcessor")


def carry_processor_code(save_directory: str, code_folder: str, files, extra_config: dict | None = None) -> None:
    """Copy `files` from `code_folder` into `save_directory` and merge `extra_config` into its config.json; where the
    code is not at hand (a model loaded from a folder without it), drop the processor entries of the config's
    `auto_map` instead, so that they never point at missing files."""
    config_file = os.path.join(save_directory, "config.json")
    with open(config_file, encoding="utf-8") as handle:
        saved = json.load(handle)
    if all(os.path.isfile(os.path.join(code_folder, name)) for name in files):
        for name in files:
            shutil.copyfile(os.path.join(code_folder, name), os.path.join(save_directory, name))
        saved.update(extra_config or {})
    else:
        for key in PROCESSOR_AUTO_CLASSES:
            saved.get("auto_map", {}).pop(key, None)
    with open(config_file, "w", encoding="utf-8") as handle:
        json.dump(saved, handle, indent=2, sort_keys=True)
        handle.write("\n")
