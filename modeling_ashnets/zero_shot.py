"""Zero-shot classification with a dual encoder: class names become prompts, prompts become one normalised text
embedding per class (the class-prompt matrix), and an image's class is the row its embedding is closest to.

Works with any model that has `get_text_features` / `get_image_features` returning an output whose `pooler_output`
is the embedding (transformers 5's CLIPModel, SpikeClipModel, AshNetsModel with projections, AshNetsForRetrieval's
base). The prompt sets name the data sets users classify, with the Hub ids they would pass.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .data.easy_vqa import easy_vqa_class_names


__all__ = ["PROMPT_SETS", "PromptSet", "class_prompt_matrix", "get_prompt_set", "zero_shot_logits"]

# Close to the captions of the built-in retrieval data ("a small red circle at the top left"), which the offline
# teachers are trained on.
EASY_VQA_TEMPLATES = ("a {}", "the image shows a {}", "a {} on a white background")
PHOTO_TEMPLATES = ("a photo of a {}.", "a blurry photo of a {}.", "a low resolution photo of a {}.",
                   "a close-up photo of a {}.", "a photo of the small {}.", "a picture of a {}.")

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion", "lizard",
    "lobster", "man", "maple tree", "motorcycle", "mountain", "mouse", "mushroom", "oak tree", "orange", "orchid",
    "otter", "palm tree", "pear", "pickup truck", "pine tree", "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper",
    "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf",
    "woman", "worm",
)


@dataclass(frozen=True)
class PromptSet:
    """Class names and prompt templates of one data set, and where its images and labels are."""

    name: str
    class_names: tuple[str, ...]
    templates: tuple[str, ...]
    hub_id: str | None = None  # what users pass to datasets.load_dataset
    image_column: str = "image"
    label_column: str = "label"

    def prompts(self, class_name: str) -> list[str]:
        return [template.format(class_name) for template in self.templates]


PROMPT_SETS = {
    "easy-vqa": PromptSet("easy-vqa", tuple(easy_vqa_class_names()), EASY_VQA_TEMPLATES),
    "cifar10": PromptSet("cifar10", CIFAR10_CLASSES, PHOTO_TEMPLATES, "uoft-cs/cifar10", "img", "label"),
    "cifar100": PromptSet("cifar100", CIFAR100_CLASSES, PHOTO_TEMPLATES, "uoft-cs/cifar100", "img", "fine_label"),
}


def get_prompt_set(name: str) -> PromptSet:
    if name not in PROMPT_SETS:
        raise ValueError(f"Unknown prompt set {name!r}; choose one of {sorted(PROMPT_SETS)}.")
    return PROMPT_SETS[name]


@torch.no_grad()
def class_prompt_matrix(model, processor, class_names, templates=("{}",), batch_size: int = 256) -> torch.Tensor:
    """(num_classes, dim): for each class, the mean of its prompts' normalised text embeddings, normalised again.
    `processor(text=[...], return_tensors="pt")` tokenizes for `model` (its processor or tokenizer)."""
    if not class_names:
        raise ValueError("class_names is empty: pass at least one class name.")
    if not templates or any("{}" not in template for template in templates):
        raise ValueError(f"Every template needs a '{{}}' where the class name goes, got {list(templates)}.")
    prompts = [template.format(name) for name in class_names for template in templates]
    device = next(model.parameters()).device
    embeddings = []
    for start in range(0, len(prompts), batch_size):
        inputs = processor(text=prompts[start : start + batch_size], return_tensors="pt")
        inputs = {key: value.to(device) for key, value in inputs.items() if key in ("input_ids", "attention_mask",
                                                                                    "token_type_ids")}
        features = model.get_text_features(**inputs)
        features = getattr(features, "pooler_output", features)
        embeddings.append(nn.functional.normalize(features.float(), dim=-1))
    per_prompt = torch.cat(embeddings).view(len(class_names), len(templates), -1)
    return nn.functional.normalize(per_prompt.mean(dim=1), dim=-1)


def zero_shot_logits(model, pixel_values: torch.Tensor, class_matrix: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """(batch, num_classes): `scale` times the cosine similarity of each image to each class's prompt embedding."""
    features = model.get_image_features(pixel_values=pixel_values)
    features = getattr(features, "pooler_output", features)
    return scale * nn.functional.normalize(features.float(), dim=-1) @ class_matrix.t()
