"""The value checks every model family runs on its inputs: token ids within the vocabulary and finite pixels.

They read the tensors (on a GPU, each waits for the device), so a model runs them only until one call has passed
them; shapes and dtypes, which need no sync, are checked on every call by each family's own code.
"""

import torch


__all__ = ["check_input_values"]


def check_input_values(vocab_size: int, input_ids: torch.Tensor | None = None,
                       pixel_values: torch.Tensor | None = None) -> None:
    if input_ids is not None and input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocab_size):
        raise ValueError(
            f"input_ids must lie in [0, {vocab_size}), got values from {int(input_ids.min())} to "
            f"{int(input_ids.max())}: was the text tokenized with another vocabulary?"
        )
    if pixel_values is not None and not torch.isfinite(pixel_values).all():
        raise ValueError("pixel_values contains NaN or infinite values: check the images and their preprocessing.")
