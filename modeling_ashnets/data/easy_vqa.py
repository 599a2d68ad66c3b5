"""easy-VQA (the `easy-vqa` PyPI package) as the built-in data set of every task, offline.

Why: the official data sets of the four tasks cannot be downloaded here, and a newcomer should see every task learn
within minutes. easy-VQA ships 4,000 train and 1,000 test 64x64 images of one coloured shape with 38,575 / 9,673
questions over 13 answers. Each image's pixels give the shape's colour, size and position, and its questions (or, where
they do not say, the pixels) its shape. From these facts this module derives, deterministically:

* retrieval captions ("a small blue circle at the top left"; the test gallery keeps one image per description, so
  that every caption has exactly one correct image, as in COCO / Flickr30K);
* entailment hypotheses: true (entailment), false (contradiction) or true but with an unverifiable addition such as
  "made of paper" (neutral);
* NLVR2-style statements about a pair of images ("exactly one image contains a red shape"), half true, half false.

Every loader returns the columns of the matching official-format loader (vqa_v2, karpathy, snli_ve, nlvr2), so the
same collators, scripts and metrics run on both.
"""

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
from PIL import Image

from ..modeling_ashnets import ENTAILMENT_LABELS
from .karpathy import KARPATHY_IMAGE_FEATURES, KARPATHY_PAIR_FEATURES
from .nlvr2 import NLVR2_FEATURES
from .snli_ve import SNLI_VE_FEATURES
from .vqa_v2 import VQA_V2_FEATURES


__all__ = [
    "EASY_VQA_COLORS",
    "EASY_VQA_SHAPES",
    "ImageFacts",
    "easy_vqa_answers",
    "easy_vqa_image_facts",
    "easy_vqa_question_type",
    "load_easy_vqa",
    "load_easy_vqa_entailment",
    "load_easy_vqa_nlvr2",
    "load_easy_vqa_retrieval",
]

EASY_VQA_COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
EASY_VQA_SHAPES = ("circle", "rectangle", "triangle")
SPLITS = ("train", "test")
_PALETTE = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0), (128, 128, 128), (0, 128, 128), (165, 42, 42), (255, 255, 0))
_UNVERIFIABLE = ("made of paper", "drawn by a child", "about to move", "painted yesterday")
_ROWS, _COLUMNS = ("top", "middle", "bottom"), ("left", "center", "right")


def _position_name(row: str, column: str) -> str:
    if row == "middle":
        return "center" if column == "center" else column
    return row if column == "center" else f"{row} {column}"


EASY_VQA_SIZES = ("small", "large")
EASY_VQA_POSITIONS = tuple(_position_name(row, column) for row in _ROWS for column in _COLUMNS)


@dataclass(frozen=True)
class ImageFacts:
    """What one easy-VQA image shows."""

    image_id: int
    path: str
    color: str
    shape: str
    size: str  # "small" or "large"
    position: str  # "top left", "top", ..., "center", ..., "bottom right"

    def caption(self, template: int = 0) -> str:
        return caption_template(template, self.size, self.position).format(f"{self.color} {self.shape}")


def caption_template(template: int, size: str, position: str) -> str:
    """Caption form `template` (0 or 1) of a shape of `size` at `position`, with `{}` where "colour shape" goes."""
    if template == 0:
        return f"a {size} {{}} at the {position}"
    return f"the image shows a {{}}, {size}, at the {position}"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"easy-VQA has the splits {SPLITS}, got {split!r}.")


def _questions(split: str) -> tuple[list[str], list[str], list[int]]:
    import easy_vqa

    return easy_vqa.get_train_questions() if split == "train" else easy_vqa.get_test_questions()


def _image_paths(split: str) -> dict[int, str]:
    import easy_vqa

    return easy_vqa.get_train_image_paths() if split == "train" else easy_vqa.get_test_image_paths()


def easy_vqa_answers() -> list[str]:
    """The 13 answers, in the package's order (the label ids of the VQA head)."""
    import easy_vqa

    return list(easy_vqa.get_answers())


def _answer_type(answer: str) -> str:
    return "color" if answer in EASY_VQA_COLORS else "shape" if answer in EASY_VQA_SHAPES else "yes/no"


def easy_vqa_question_type(question: str) -> str:
    """"color" and "shape" questions ask for the attribute; "yes/no color" and "yes/no shape" ask whether the image
    has a named colour ("is there a red shape?") or shape ("is there not a circle?")."""
    words = question.lower().rstrip("?").split()
    if words[0] == "what":
        return "color" if "color" in words else "shape"
    return "yes/no color" if any(word in EASY_VQA_COLORS for word in words) else "yes/no shape"


def load_easy_vqa(split: str = "train", max_samples: int | None = None) -> datasets.Dataset:
    """easy-VQA questions with the VQA v2 loader's columns; `answer_type` is the answer's kind ("yes/no", "color" or
    "shape"), `question_type` one of the four kinds of question (`easy_vqa_question_type`), and each question has its
    single answer with score 1."""
    _check_split(split)
    questions, answers, image_ids = _questions(split)
    paths = _image_paths(split)
    answer_ids = {answer: index for index, answer in enumerate(easy_vqa_answers())}
    count = len(questions) if max_samples is None else min(max_samples, len(questions))
    rows = {name: [] for name in VQA_V2_FEATURES}
    for index in range(count):
        kind = _answer_type(answers[index])
        values = {
            "question_id": index,
            "image_id": image_ids[index],
            "image": paths[image_ids[index]],
            "question": questions[index],
            "question_type": easy_vqa_question_type(questions[index]),
            "answer_type": kind,
            "answers": [answers[index]],
            "labels": [answer_ids[answers[index]]],
            "scores": [1.0],
        }
        for name, value in values.items():
            rows[name].append(value)
    return datasets.Dataset.from_dict(rows, features=VQA_V2_FEATURES)


def _facts_from_questions(questions, answers, image_ids) -> dict[int, dict[str, str]]:
    """Colour and shape of each image, read off easy-VQA's question templates. A direct answer ("what color is the
    shape?" - "blue") wins over a fact named in a question ("what is the blue shape?"), which wins over a yes/no
    answer ("is no blue shape present?" - "no")."""
    found: dict[int, dict[str, tuple[int, str]]] = {}

    def note(image_id, attribute, value, strength):
        known = found.setdefault(image_id, {})
        if attribute not in known or known[attribute][0] < strength:
            known[attribute] = (strength, value)

    for question, answer, image_id in zip(questions, answers, image_ids):
        words = question.rstrip("?").split()
        colors = [word for word in words if word in EASY_VQA_COLORS]
        shapes = [word for word in words if word in EASY_VQA_SHAPES]
        if answer in EASY_VQA_COLORS:
            note(image_id, "color", answer, 3)
            if shapes:  # "what color is the triangle?"
                note(image_id, "shape", shapes[0], 2)
        elif answer in EASY_VQA_SHAPES:
            note(image_id, "shape", answer, 3)
            if colors:  # "what is the blue shape?"
                note(image_id, "color", colors[0], 2)
        elif (answer == "yes") != bool({"not", "no"} & set(words)):  # the named colour or shape is present
            if colors:
                note(image_id, "color", colors[0], 1)
            if shapes:
                note(image_id, "shape", shapes[0], 1)
    return {image_id: {key: value for key, (_, value) in known.items()} for image_id, known in found.items()}


LARGE_AREA = 0.12  # a shape covering more than this share of the image is "large"


def shape_mask(path: str) -> np.ndarray:
    """(H, W) bool: the pixels of the image's one shape (those far from the background colour of its border)."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    mask = np.abs(pixels - np.median(border, axis=0)).sum(axis=-1) > 60
    if not mask.any():
        raise ValueError(f"{path}: no shape found in this easy-VQA image.")
    return mask


def _pixel_facts(path: str) -> dict[str, str]:
    """Colour (nearest palette entry), shape (how much of its bounding box the shape fills: rectangles about 1,
    circles about pi/4, triangles about 1/2), size (area against `LARGE_AREA`) and position (the centroid's third of
    the image in each direction) of the one shape, from the image's pixels."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    mask = shape_mask(path)
    rows, columns = np.nonzero(mask)
    shape_pixels = pixels[mask]
    distances = np.abs(shape_pixels[:, None, :] - np.array(_PALETTE)[None]).sum(axis=-1)
    color = EASY_VQA_COLORS[np.bincount(distances.argmin(axis=1), minlength=len(_PALETTE)).argmax()]
    fill = mask.sum() / ((np.ptp(rows) + 1) * (np.ptp(columns) + 1))
    shape = "triangle" if fill < 0.7 else "circle" if fill < 0.905 else "rectangle"
    height, width = mask.shape
    row = _ROWS[min(int(3 * rows.mean() / height), 2)]
    column = _COLUMNS[min(int(3 * columns.mean() / width), 2)]
    position = _position_name(row, column)
    size = "large" if mask.mean() > LARGE_AREA else "small"
    return {"color": color, "shape": shape, "size": size, "position": position}


@functools.lru_cache(maxsize=2)
def easy_vqa_image_facts(split: str = "train") -> tuple[ImageFacts, ...]:
    """Facts of every image of a split. The colour is read from the pixels (easy-VQA draws in 8 exact palette
    colours); the shape from the questions where they reveal it, else from the pixels. Cached (a few seconds)."""
    _check_split(split)
    from_questions = _facts_from_questions(*_questions(split))
    facts = []
    for image_id, path in sorted(_image_paths(split).items()):
        known = _pixel_facts(path)
        known["shape"] = from_questions.get(image_id, {}).get("shape", known["shape"])
        facts.append(ImageFacts(image_id=image_id, path=path, **known))
    return tuple(facts)


def _limit(rows: dict[str, list], max_samples: int | None) -> dict[str, list]:
    return rows if max_samples is None else {name: values[:max_samples] for name, values in rows.items()}


def load_easy_vqa_retrieval(split: str = "test", pairs: bool = False, max_samples: int | None = None) -> datasets.Dataset:
    """Captioned easy-VQA images with the Karpathy loader's columns. `pairs=True` gives one row per caption (for
    training); the test split keeps one image per distinct description, so every caption has one correct image."""
    facts = easy_vqa_image_facts(split)
    if split == "test":
        first = {}
        for fact in facts:
            first.setdefault(fact.caption(), fact)
        facts = list(first.values())
    if pairs:
        rows = {"image_id": [], "image": [], "caption": []}
        for fact in facts:
            for template in (0, 1):
                rows["image_id"].append(fact.image_id)
                rows["image"].append(fact.path)
                rows["caption"].append(fact.caption(template))
        return datasets.Dataset.from_dict(_limit(rows, max_samples), features=KARPATHY_PAIR_FEATURES)
    rows = {
        "image_id": [fact.image_id for fact in facts],
        "image": [fact.path for fact in facts],
        "captions": [[fact.caption(0), fact.caption(1)] for fact in facts],
    }
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=KARPATHY_IMAGE_FEATURES)


def _other(value: str, choices: Sequence[str], rng: random.Random) -> str:
    return rng.choice([choice for choice in choices if choice != value])


def _hypothesis(fact: ImageFacts, label: str, rng: random.Random) -> str:
    """A statement about the image with the given entailment label."""
    color, shape = fact.color, fact.shape
    mentions = rng.choice(("color", "shape", "both"))
    if label == "contradiction":
        wrong = mentions if mentions != "both" else rng.choice(("color", "shape"))
        if wrong == "color":
            color = _other(color, EASY_VQA_COLORS, rng)
        else:
            shape = _other(shape, EASY_VQA_SHAPES, rng)
    text = {"color": f"there is a {color} shape", "shape": f"there is a {shape}", "both": f"there is a {color} {shape}"}
    statement = text[mentions]
    if label == "neutral" or (label == "contradiction" and rng.random() < 0.5):
        statement += " " + rng.choice(_UNVERIFIABLE)  # true facts plus an unverifiable claim: undecidable
    return statement


def load_easy_vqa_entailment(
    split: str = "train", per_image: int = 3, max_samples: int | None = None, seed: int = 0
) -> datasets.Dataset:
    """Visual-entailment rows (SNLI-VE loader's columns) over easy-VQA images, the three labels equally often."""
    rng = random.Random(f"entailment-{split}-{seed}")
    rows = {name: [] for name in SNLI_VE_FEATURES}
    for fact in easy_vqa_image_facts(split):
        for index in range(per_image):
            label = (fact.image_id + index) % len(ENTAILMENT_LABELS)
            rows["pair_id"].append(f"{split}-{fact.image_id}-{index}")
            rows["image"].append(fact.path)
            rows["premise"].append(fact.caption())
            rows["hypothesis"].append(_hypothesis(fact, ENTAILMENT_LABELS[label], rng))
            rows["label"].append(label)
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=SNLI_VE_FEATURES)


_QUANTIFIERS = ("both", "exactly one", "neither", "left", "right")


def _pair_statement(left: ImageFacts, right: ImageFacts, quantifier: str, rng: random.Random) -> tuple[str, bool]:
    """A statement with the given quantifier about two images, and whether it is true."""
    attribute = rng.choice(("color", "shape"))
    pool = EASY_VQA_COLORS if attribute == "color" else EASY_VQA_SHAPES
    value = rng.choice((getattr(left, attribute), getattr(right, attribute), rng.choice(pool)))
    noun = f"a {value} shape" if attribute == "color" else f"a {value}"
    has = [getattr(left, attribute) == value, getattr(right, attribute) == value]
    if quantifier == "both":
        return f"both images contain {noun}", all(has)
    if quantifier == "exactly one":
        return f"exactly one image contains {noun}", sum(has) == 1
    if quantifier == "neither":
        return f"neither image contains {noun}", not any(has)
    return f"the {quantifier} image contains {noun}", has[0 if quantifier == "left" else 1]


def load_easy_vqa_nlvr2(
    split: str = "train", num_samples: int | None = None, max_samples: int | None = None, seed: int = 0
) -> datasets.Dataset:
    """NLVR2-style rows (NLVR2 loader's columns): two easy-VQA images, one statement; every kind of statement
    ("both", "exactly one", "neither", "the left", "the right") is true half of the time.
    `num_samples` defaults to 2.5 pairs per image of the split."""
    facts = easy_vqa_image_facts(split)
    rng = random.Random(f"nlvr2-{split}-{seed}")
    total = num_samples if num_samples is not None else int(2.5 * len(facts))
    rows = {name: [] for name in NLVR2_FEATURES}
    for index in range(total):
        # Each quantifier is true half of the time, so the wording alone says little about the answer.
        quantifier, truth = _QUANTIFIERS[(index // 2) % len(_QUANTIFIERS)], index % 2 == 0
        while True:
            left, right = rng.sample(facts, 2)
            sentence, holds = _pair_statement(left, right, quantifier, rng)
            if holds == truth:
                break
        rows["identifier"].append(f"{split}-{index}-{left.image_id}-{right.image_id}")
        rows["images"].append([left.path, right.path])
        rows["sentence"].append(sentence)
        rows["label"].append(int(truth))
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=NLVR2_FEATURES)


def easy_vqa_class_names() -> list[str]:
    """The 24 colour-shape classes of easy-VQA images ("red circle", ...), colours outer, shapes inner."""
    return [f"{color} {shape}" for color in EASY_VQA_COLORS for shape in EASY_VQA_SHAPES]


def load_easy_vqa_classification(split: str = "train", max_samples: int | None = None) -> datasets.Dataset:
    """easy-VQA images labelled by their colour-shape class (`easy_vqa_class_names`), for zero-shot classification and
    SpikeCLIP's distillation: columns `image_id`, `image` (path), `label` (ClassLabel), `caption` (the image's
    description, for the text and alignment stages)."""
    names = easy_vqa_class_names()
    facts = easy_vqa_image_facts(split)
    rows = {
        "image_id": [fact.image_id for fact in facts],
        "image": [fact.path for fact in facts],
        "label": [names.index(f"{fact.color} {fact.shape}") for fact in facts],
        "caption": [fact.caption(0) for fact in facts],
    }
    features = datasets.Features({"image_id": datasets.Value("int64"), "image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=names), "caption": datasets.Value("string")})
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=features)
