"""Shape scenes: a built-in multi-object data set, drawn in code, where relations between objects matter.

Why: easy-VQA shows one shape per image, so none of its questions needs more than one object. Each 96x96 image here
shows 2-5 flat shapes (circle, square, triangle; 6 colours; small or large) on white, never touching, and questions
ask about attributes, counts and left / right / above / below relations. Three colour-shape pairs
(`SHAPE_SCENES_HELD_OUT`) never appear in a training image; test questions about them have their own
`question_type`, so that compositional generalisation is measured apart.

Every scene is drawn from a seed of its split and index alone (string seeds: no hash randomisation, no global state),
so a split is the same bytes on every run, in any order of calls, and a smaller split is the start of a larger one.
Images, COCO-panoptic annotation PNGs and each split's COCO-panoptic JSON are written once into a cache folder
(`root=`, else `$ASHNETS_SHAPE_SCENES_DIR`, else `~/.cache/ashnets/shape_scenes/v1`), one sub-folder per split and
size, and reused afterwards:

    {root}/{split}-{num_images}/images/000000.png        the scene (RGB, white background, no anti-aliasing)
    {root}/{split}-{num_images}/panoptic/000000.png      segment id of each pixel as R + 256 G + 256^2 B
    {root}/{split}-{num_images}/panoptic_{split}.json    {"info", "images", "annotations", "categories"}

so that a COCO panoptic reader reads this data and real COCO alike. Every pixel belongs to a segment: the white
background is the "background" stuff segment, each shape a thing segment of its shape's category (its `segments_info`
entry also names its `color` and `size`). Questions, captions and entailment statements are derived from the JSON
when loaded, with the columns of the matching official-format loader (vqa_v2 plus `panoptic`, karpathy, snli_ve).
"""

import functools
import json
import os
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from PIL import Image, ImageDraw

from ..modeling_ashnets import ENTAILMENT_LABELS
from .karpathy import KARPATHY_IMAGE_FEATURES, KARPATHY_PAIR_FEATURES
from .snli_ve import SNLI_VE_FEATURES
from .vqa_v2 import VQA_V2_FEATURES


__all__ = [
    "SHAPE_SCENES_COLORS",
    "SHAPE_SCENES_FEATURES",
    "SHAPE_SCENES_HELD_OUT",
    "SHAPE_SCENES_NUM_IMAGES",
    "SHAPE_SCENES_QUESTION_TYPES",
    "SHAPE_SCENES_RGB",
    "SHAPE_SCENES_SHAPES",
    "SHAPE_SCENES_SIZES",
    "Scene",
    "SceneObject",
    "SceneQuestion",
    "generate_shape_scenes",
    "load_shape_scenes",
    "load_shape_scenes_entailment",
    "load_shape_scenes_retrieval",
    "rgb_to_id",
    "scene_caption",
    "scene_questions",
    "shape_scenes_answers",
    "shape_scenes_facts",
    "shape_scenes_panoptic_json",
]

VERSION = 1
SHAPE_SCENES_COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPE_SCENES_RGB = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 80, 230),
    "yellow": (240, 230, 30),
    "purple": (130, 40, 190),
    "orange": (250, 130, 0),
}
SHAPE_SCENES_SHAPES = ("circle", "square", "triangle")
SHAPE_SCENES_SIZES = ("small", "large")
# Never drawn in a training image; one pair per shape and per colour, so every colour and shape is still trained.
SHAPE_SCENES_HELD_OUT = (("blue", "circle"), ("yellow", "square"), ("purple", "triangle"))
SHAPE_SCENES_NUM_IMAGES = {"train": 4000, "test": 1000}
SHAPE_SCENES_QUESTION_TYPES = ("attribute", "count", "relation", "held-out combination")
SHAPE_SCENES_FEATURES = datasets.Features({**VQA_V2_FEATURES, "panoptic": datasets.Value("string")})
SPLITS = tuple(SHAPE_SCENES_NUM_IMAGES)
ENVIRONMENT_VARIABLE = "ASHNETS_SHAPE_SCENES_DIR"

IMAGE_SIZE = 96
BACKGROUND_RGB = (255, 255, 255)
MIN_OBJECTS, MAX_OBJECTS = 2, 5
MIN_QUESTIONS = 8  # per scene, where it has that many distinct things to ask
_HALF_SIDE = {"small": 7, "large": 13}  # a shape fills the square of side 2 * half + 1 around its centre
_GAP = 3  # at least this many background pixels between the squares of two shapes, so masks never touch
_EDGE = 2  # and between a shape's square and the image border
_REPEAT = 0.4  # chance that a shape takes the colour (or shape) of one already drawn: counts above 1 get common
RELATION_MARGIN = 10  # pixels between centres before "left of" / "above" holds; closer pairs are never asked about
_RELATIONS = ("left of", "right of", "above", "below")
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five")
_UNVERIFIABLE = ("the shapes are made of paper", "a child drew the picture", "the picture was drawn yesterday",
                 "the shapes are about to move")

BACKGROUND_SEGMENT_ID = 1  # 0 is VOID (unlabelled) in COCO panoptic PNGs; here no pixel is unlabelled
_CATEGORY_IDS = {**{shape: index for index, shape in enumerate(SHAPE_SCENES_SHAPES, start=1)}, "background": 4}
_CATEGORIES = [
    *({"id": _CATEGORY_IDS[shape], "name": shape, "supercategory": "shape", "isthing": 1}
      for shape in SHAPE_SCENES_SHAPES),
    {"id": _CATEGORY_IDS["background"], "name": "background", "supercategory": "background", "isthing": 0},
]


@dataclass(frozen=True)
class SceneObject:
    """One shape of a scene, as its panoptic segment records it."""

    segment_id: int
    color: str
    shape: str
    size: str  # "small" or "large"
    bbox: tuple[int, int, int, int]  # COCO's [x, y, width, height] of its pixels
    area: int

    @property
    def pair(self) -> tuple[str, str]:
        return self.color, self.shape

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of its box's centre; y grows downwards."""
        x, y, width, height = self.bbox
        return x + (width - 1) / 2, y + (height - 1) / 2


@dataclass(frozen=True)
class Scene:
    """One image of a split, its panoptic PNG and its shapes."""

    image_id: int
    path: str
    panoptic: str
    objects: tuple[SceneObject, ...]


@dataclass(frozen=True)
class SceneQuestion:
    text: str
    answer: str
    kind: str  # "attribute", "count" or "relation"
    mentions: tuple[tuple[str, str], ...]  # colour-shape pairs that the question or its answer names


# ---------------------------------------------------------------------------------------------------------------------
# Drawing and files


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} for the shape scenes, got {split!r}.")


def _num_images(split: str, num_images: int | None) -> int:
    if num_images is None:
        return SHAPE_SCENES_NUM_IMAGES[split]
    if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 1:
        raise ValueError(f"num_images must be None or a positive integer, got {num_images!r}.")
    return num_images


def _root(root: str | os.PathLike | None) -> Path:
    """`root`, else $ASHNETS_SHAPE_SCENES_DIR, else ~/.cache/ashnets/shape_scenes/v1."""
    if root is None:
        default = Path.home() / ".cache" / "ashnets" / "shape_scenes" / f"v{VERSION}"
        root = os.environ.get(ENVIRONMENT_VARIABLE) or default
    return Path(os.path.expanduser(root))


def _pairs(split: str) -> list[tuple[str, str]]:
    """The colour-shape pairs a split draws: all 18 in test, all but the held-out ones in train."""
    pairs = [(color, shape) for color in SHAPE_SCENES_COLORS for shape in SHAPE_SCENES_SHAPES]
    return pairs if split == "test" else [pair for pair in pairs if pair not in SHAPE_SCENES_HELD_OUT]


def _free_center(half: int, placed: list[tuple], rng: random.Random) -> tuple[int, int] | None:
    """A centre whose square keeps `_GAP` pixels from every placed square (and `_EDGE` from the border)."""
    low, high = half + _EDGE, IMAGE_SIZE - 1 - half - _EDGE
    for _ in range(100):
        x, y = rng.randint(low, high), rng.randint(low, high)
        apart = (abs(x - other_x) > half + other_half + _GAP or abs(y - other_y) > half + other_half + _GAP
                 for *_, other_half, other_x, other_y in placed)
        if all(apart):
            return x, y
    return None


def _pick(values: Sequence[str], earlier: list[str], rng: random.Random) -> str:
    """One of `values`; with chance `_REPEAT` one of `earlier` (those in `values`) instead."""
    repeatable = [value for value in earlier if value in values]
    return rng.choice(repeatable) if repeatable and rng.random() < _REPEAT else rng.choice(values)


def _plan_scene(split: str, index: int) -> list[tuple[str, str, str, int, int, int]]:
    """(colour, shape, size, half side, centre x, centre y) of each shape of image `index` of `split`."""
    rng = random.Random(f"shape-scenes-v{VERSION}-{split}-{index}")
    pairs = _pairs(split)
    count = rng.randint(MIN_OBJECTS, MAX_OBJECTS)
    while True:  # a crowded draw that leaves no room starts over, from the same generator
        placed = []
        for _ in range(count):
            color = _pick(SHAPE_SCENES_COLORS, [item[0] for item in placed], rng)
            shape = _pick([shape for other, shape in pairs if other == color], [item[1] for item in placed], rng)
            size = rng.choice(SHAPE_SCENES_SIZES)
            center = _free_center(_HALF_SIDE[size], placed, rng)
            if center is None:
                break
            placed.append((color, shape, size, _HALF_SIDE[size], *center))
        if len(placed) == count:
            return placed


def _id_to_rgb(segment_id: int) -> tuple[int, int, int]:
    return segment_id % 256, segment_id // 256 % 256, segment_id // 65536


def rgb_to_id(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) panoptic PNG pixels -> (H, W) segment ids, COCO's id = R + 256 G + 256^2 B."""
    pixels = pixels.astype(np.int64)
    return pixels[..., 0] + 256 * pixels[..., 1] + 65536 * pixels[..., 2]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, half: int, x: int, y: int, fill: tuple) -> None:
    box = (x - half, y - half, x + half, y + half)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:  # pointing up, its base the square's bottom row
        draw.polygon([(x, y - half), (x + half, y + half), (x - half, y + half)], fill=fill)


def _draw_scene(plan: list[tuple]) -> tuple[Image.Image, Image.Image]:
    """The scene and its panoptic PNG. Both are drawn by the same calls (PIL's ImageDraw does not anti-alias), so
    each segment is exactly the pixels of its shape's colour."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND_RGB)
    panoptic = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), _id_to_rgb(BACKGROUND_SEGMENT_ID))
    image_draw, panoptic_draw = ImageDraw.Draw(image), ImageDraw.Draw(panoptic)
    for segment_id, (color, shape, _, half, x, y) in enumerate(plan, start=BACKGROUND_SEGMENT_ID + 1):
        _draw_shape(image_draw, shape, half, x, y, SHAPE_SCENES_RGB[color])
        _draw_shape(panoptic_draw, shape, half, x, y, _id_to_rgb(segment_id))
    return image, panoptic


def _segment(ids: np.ndarray, segment_id: int, category: str) -> dict:
    """A `segments_info` entry: the segment's pixel count and COCO box [x, y, width, height]."""
    rows, columns = np.nonzero(ids == segment_id)
    bbox = [int(columns.min()), int(rows.min()), int(np.ptp(columns)) + 1, int(np.ptp(rows)) + 1]
    return {"id": segment_id, "category_id": _CATEGORY_IDS[category], "bbox": bbox, "area": int(rows.size),
            "iscrowd": 0}


def _write_split(folder: Path, split: str, count: int) -> None:
    """Draws `count` scenes of `split` into `folder` (images/, panoptic/ and the JSON, written last)."""
    (folder / "images").mkdir()
    (folder / "panoptic").mkdir()
    images, annotations = [], []
    for index in range(count):
        plan = _plan_scene(split, index)
        image, panoptic = _draw_scene(plan)
        name = f"{index:06d}.png"
        image.save(folder / "images" / name)
        panoptic.save(folder / "panoptic" / name)
        ids = rgb_to_id(np.asarray(panoptic))
        segments = [_segment(ids, BACKGROUND_SEGMENT_ID, "background")]
        for segment_id, (color, shape, size, *_) in enumerate(plan, start=BACKGROUND_SEGMENT_ID + 1):
            segments.append({**_segment(ids, segment_id, shape), "color": color, "size": size})
        images.append({"id": index, "file_name": name, "width": IMAGE_SIZE, "height": IMAGE_SIZE})
        annotations.append({"image_id": index, "file_name": name, "segments_info": segments})
    info = {"description": "ASH-Nets shape scenes", "version": VERSION, "split": split, "num_images": count,
            "held_out": [list(pair) for pair in SHAPE_SCENES_HELD_OUT]}
    document = {"info": info, "images": images, "annotations": annotations, "categories": _CATEGORIES}
    with open(folder / f"panoptic_{split}.json", "w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.write("\n")


def generate_shape_scenes(split: str = "train", root: str | os.PathLike | None = None,
                          num_images: int | None = None) -> Path:
    """The folder of a split's first `num_images` scenes (default 4,000 train, 1,000 test), drawn on first use.

    Why the temporary folder: it is renamed into place only when complete, so an interrupted run leaves no half
    split behind, and two processes drawing at once both end with the same finished folder."""
    _check_split(split)
    count = _num_images(split, num_images)
    folder = _root(root) / f"{split}-{count}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        _write_split(temporary, split, count)
        os.chmod(temporary, 0o755)  # mkdtemp's folder is private; the finished cache is not
        try:
            os.rename(temporary, folder)
        except OSError:
            if not folder.is_dir():
                raise  # not another process's finished copy: a real error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def shape_scenes_panoptic_json(split: str = "train", root: str | os.PathLike | None = None,
                               num_images: int | None = None) -> Path:
    """Path of the split's COCO-panoptic JSON (its PNGs are in the `panoptic` folder beside it)."""
    return generate_shape_scenes(split, root, num_images) / f"panoptic_{split}.json"


@functools.lru_cache(maxsize=4)
def _read_scenes(json_path: str) -> tuple[Scene, ...]:
    with open(json_path, encoding="utf-8") as handle:
        document = json.load(handle)
    if document.get("info", {}).get("version") != VERSION:
        raise ValueError(f"{json_path} holds shape scenes of another version ({document.get('info')}); delete its "
                         f"folder or pass another root (this code draws version {VERSION}).")
    folder = Path(json_path).parent
    names = {category["id"]: category["name"] for category in document["categories"]}
    scenes = []
    for annotation in document["annotations"]:
        objects = tuple(
            SceneObject(segment_id=segment["id"], color=segment["color"], shape=names[segment["category_id"]],
                        size=segment["size"], bbox=tuple(segment["bbox"]), area=segment["area"])
            for segment in annotation["segments_info"] if segment["id"] != BACKGROUND_SEGMENT_ID
        )
        scenes.append(Scene(image_id=annotation["image_id"], path=str(folder / "images" / annotation["file_name"]),
                            panoptic=str(folder / "panoptic" / annotation["file_name"]), objects=objects))
    return tuple(scenes)


def shape_scenes_facts(split: str = "train", root: str | os.PathLike | None = None,
                       num_images: int | None = None) -> tuple[Scene, ...]:
    """Every scene of a split, read from its panoptic JSON (drawn first if needed)."""
    return _read_scenes(str(shape_scenes_panoptic_json(split, root, num_images)))


# ---------------------------------------------------------------------------------------------------------------------
# Descriptions shared by questions, captions and statements


def _plural(shape: str, count: int) -> str:
    return shape if count == 1 else f"{shape}s"


def _unique(objects: Sequence[SceneObject], target: SceneObject, attributes: Sequence[str]) -> bool:
    key = tuple(getattr(target, name) for name in attributes)
    return sum(tuple(getattr(other, name) for name in attributes) == key for other in objects) == 1


def _description(objects: Sequence[SceneObject], target: SceneObject, options: Sequence[Sequence[str]]) -> str | None:
    """The first of `options` (attribute names) that singles `target` out, as words ("large circle"); else None."""
    for attributes in options:
        if _unique(objects, target, attributes):
            return " ".join(getattr(target, name) for name in attributes)
    return None


def _holds(first: SceneObject, relation: str, second: SceneObject, margin: float = RELATION_MARGIN) -> bool:
    """Whether `first` is `relation` `second` by their centres, with `margin` pixels to spare."""
    (first_x, first_y), (second_x, second_y) = first.center, second.center
    offset = {"left of": second_x - first_x, "right of": first_x - second_x,
              "above": second_y - first_y, "below": first_y - second_y}[relation]
    return offset >= margin


def _relation_facts(objects: Sequence[SceneObject]) -> list[tuple[SceneObject, str, SceneObject]]:
    """Every clear relation between two shapes that their colour and shape each single out, in a fixed order."""
    named = [item for item in objects if _unique(objects, item, ("color", "shape"))]
    return [(first, relation, second) for first in named for second in named if first is not second
            for relation in _RELATIONS if _holds(first, relation, second)]


# ---------------------------------------------------------------------------------------------------------------------
# Questions


def shape_scenes_answers() -> list[str]:
    """Every answer, in a fixed order (the label ids of the VQA head)."""
    return ["yes", "no", *(str(number) for number in range(MAX_OBJECTS + 1)), *SHAPE_SCENES_COLORS,
            *SHAPE_SCENES_SHAPES]


def _answer_type(answer: str) -> str:
    return "yes/no" if answer in ("yes", "no") else "number" if answer.isdigit() else "other"


def _color_question(objects, rng) -> SceneQuestion | None:
    """"what color is the circle?" about a shape its shape (or size and shape) singles out."""
    described = [(item, _description(objects, item, (("shape",), ("size", "shape")))) for item in objects]
    described = [(item, words) for item, words in described if words]
    if not described:
        return None
    item, words = rng.choice(described)
    return SceneQuestion(f"what color is the {words}?", item.color, "attribute", (item.pair,))


def _shape_question(objects, rng) -> SceneQuestion | None:
    """"what shape is the red object?" about a shape its colour (or size and colour) singles out."""
    described = [(item, _description(objects, item, (("color",), ("size", "color")))) for item in objects]
    described = [(item, words) for item, words in described if words]
    if not described:
        return None
    item, words = rng.choice(described)
    return SceneQuestion(f"what shape is the {words} object?", item.shape, "attribute", (item.pair,))


def _exists_text(attribute: str, value: str | tuple[str, str]) -> str:
    if attribute == "pair":
        return "is there a {} {}?".format(*value)
    return f"is there a {value} shape?" if attribute == "color" else f"is there a {value}?"


def _exists_question(objects, split: str, answer: bool, rng, asked: Sequence[str] = (), attribute: str = "pair"):
    """"is there a blue triangle?" (`attribute` "pair"), "is there a blue shape?" ("color") or "is there a
    triangle?" ("shape") with the given answer, not one of the questions `asked` (None if none is left). The training
    split never names a held-out pair."""
    values = {"pair": _pairs(split), "color": SHAPE_SCENES_COLORS, "shape": SHAPE_SCENES_SHAPES}[attribute]
    present = {getattr(item, attribute) for item in objects}
    choices = [value for value in values
               if (value in present) == answer and _exists_text(attribute, value) not in asked]
    if not choices:
        return None
    value = rng.choice(choices)
    mentions = (value,) if attribute == "pair" else ()
    return SceneQuestion(_exists_text(attribute, value), "yes" if answer else "no", "attribute", mentions)


def _spread_choice(counts: dict[str, int], rng) -> str:
    """A key of `counts`, its count drawn among the counts present, 0 at half weight (almost every scene lacks some
    colour or shape): spreads count answers beyond 0 and 1."""
    values = sorted(set(counts.values()))
    value = rng.choices(values, weights=[0.5 if value == 0 else 1.0 for value in values])[0]
    return rng.choice([key for key, count in counts.items() if count == value])


def _counts(objects, attribute: str, values: Sequence[str]) -> dict[str, int]:
    return {value: sum(getattr(item, attribute) == value for item in objects) for value in values}


def _count_questions(objects, rng) -> list[SceneQuestion]:
    shapes, colors = _counts(objects, "shape", SHAPE_SCENES_SHAPES), _counts(objects, "color", SHAPE_SCENES_COLORS)
    shape, color = _spread_choice(shapes, rng), _spread_choice(colors, rng)
    return [
        SceneQuestion(f"how many {shape}s are there?", str(shapes[shape]), "count", ()),
        SceneQuestion(f"how many {color} shapes are there?", str(colors[color]), "count", ()),
        SceneQuestion("how many shapes are there?", str(len(objects)), "count", ()),
    ]


def _relation_questions(objects, first_answer: bool, rng, count: int = 3) -> list[SceneQuestion]:
    """Up to `count` questions "is the red circle left of the blue triangle?", answers alternating from
    `first_answer`. A "no" asks the opposite of a clear fact, so every relation word is asked as often with each
    answer."""
    facts = _relation_facts(objects)
    rng.shuffle(facts)
    questions = []
    for number, (first, relation, second) in enumerate(facts[:count]):
        answer = first_answer == (number % 2 == 0)
        asked = relation if answer else _OPPOSITE[relation]
        text = f"is the {first.color} {first.shape} {asked} the {second.color} {second.shape}?"
        questions.append(SceneQuestion(text, "yes" if answer else "no", "relation", (first.pair, second.pair)))
    return questions


def scene_questions(scene: Scene, split: str) -> list[SceneQuestion]:
    """The scene's 8-10 questions, from a seed of the split and image alone. Yes/no answers alternate with the image
    id, so each yes/no template is answered "yes" about half of the time."""
    rng = random.Random(f"shape-scenes-questions-{split}-{scene.image_id}")
    objects = scene.objects
    first_answer = scene.image_id % 2 == 0
    candidates = [
        _color_question(objects, rng),
        _shape_question(objects, rng),
        _exists_question(objects, split, first_answer, rng),
        _exists_question(objects, split, not first_answer, rng),
        *_count_questions(objects, rng),
        *_relation_questions(objects, first_answer, rng),
    ]
    questions = [question for question in candidates if question is not None]
    for attribute in ("pair", "color", "shape"):  # scenes of repeated shapes have few unique descriptions to ask about
        while len(questions) < MIN_QUESTIONS:
            asked = [question.text for question in questions]
            more = [_exists_question(objects, split, answer, rng, asked, attribute) for answer in (True, False)]
            if None in more:  # every "yes" of this kind asked already: a lone "no" would unbalance the template
                break
            questions.extend(more)
    return questions


def _question_type(question: SceneQuestion, split: str) -> str:
    """The question's kind; in the test split, "held-out combination" when it (or its answer) names a held-out pair."""
    held_out = split == "test" and any(pair in SHAPE_SCENES_HELD_OUT for pair in question.mentions)
    return "held-out combination" if held_out else question.kind


def _check_max_samples(max_samples: int | None) -> None:
    if max_samples is not None and (not isinstance(max_samples, int) or max_samples < 0):
        raise ValueError(f"max_samples must be None or a non-negative integer, got {max_samples!r}.")


def load_shape_scenes(split: str = "train", max_samples: int | None = None, root: str | os.PathLike | None = None,
                      num_images: int | None = None) -> datasets.Dataset:
    """Shape-scene questions with the VQA v2 loader's columns plus `panoptic` (the image's panoptic PNG).
    `question_type` is "attribute", "count", "relation" or (test only) "held-out combination"; `answer_type` VQA's
    "yes/no", "number" or "other"; each question has its single answer with score 1."""
    _check_split(split)
    _check_max_samples(max_samples)
    answer_ids = {answer: index for index, answer in enumerate(shape_scenes_answers())}
    rows = {name: [] for name in SHAPE_SCENES_FEATURES}
    for scene in shape_scenes_facts(split, root, num_images):
        for question in scene_questions(scene, split):
            values = {
                "question_id": len(rows["question_id"]),
                "image_id": scene.image_id,
                "image": scene.path,
                "question": question.text,
                "question_type": _question_type(question, split),
                "answer_type": _answer_type(question.answer),
                "answers": [question.answer],
                "labels": [answer_ids[question.answer]],
                "scores": [1.0],
                "panoptic": scene.panoptic,
            }
            for name, value in values.items():
                rows[name].append(value)
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=SHAPE_SCENES_FEATURES)


def _limit(rows: dict[str, list], max_samples: int | None) -> dict[str, list]:
    return rows if max_samples is None else {name: values[:max_samples] for name, values in rows.items()}


# ---------------------------------------------------------------------------------------------------------------------
# Captions (retrieval) and statements (entailment)


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def _listing(objects: Sequence[SceneObject]) -> list[str]:
    """"a red circle", "two blue squares", ... in the order of the colours, then of the shapes."""
    counts = Counter(item.pair for item in objects)
    order = _pairs("test")
    return [f"{'a' if count == 1 else _NUMBER_WORDS[count]} {color} {_plural(shape, count)}"
            for (color, shape), count in sorted(counts.items(), key=lambda entry: order.index(entry[0]))]


def _caption_relation(scene: Scene, split: str) -> tuple[SceneObject, str, SceneObject] | None:
    facts = _relation_facts(scene.objects)
    return random.Random(f"shape-scenes-caption-{split}-{scene.image_id}").choice(facts) if facts else None


def scene_caption(scene: Scene, split: str, form: int = 0) -> str:
    """Caption form `form` (0 or 1): every shape and one clear relation, e.g. "a red circle left of a blue square,
    and a green triangle" or "three shapes: a blue square, a green triangle and a red circle; the red circle is left
    of the blue square"."""
    relation = _caption_relation(scene, split)
    if form == 0:
        if relation is None:
            return _join(_listing(scene.objects))
        first, word, second = relation
        rest = _listing([item for item in scene.objects if item is not first and item is not second])
        text = f"a {first.color} {first.shape} {word} a {second.color} {second.shape}"
        return f"{text}, and {_join(rest)}" if rest else text
    text = f"{_NUMBER_WORDS[len(scene.objects)]} shapes: {_join(_listing(scene.objects))}"
    if relation is None:
        return text
    first, word, second = relation
    return f"{text}; the {first.color} {first.shape} is {word} the {second.color} {second.shape}"


def _caption_fits(scene: Scene, split: str, other: Scene) -> bool:
    """Whether `scene`'s captions might also describe `other`: it shows the same shapes (a caption lists them all),
    and the named relation is not clearly false there."""
    if Counter(item.pair for item in scene.objects) != Counter(item.pair for item in other.objects):
        return False
    relation = _caption_relation(scene, split)
    if relation is None:
        return True
    first, word, second = relation
    found = {item.pair: item for item in other.objects}
    return not _holds(found[first.pair], _OPPOSITE[word], found[second.pair])


def _gallery(scenes: Sequence[Scene], split: str) -> list[Scene]:
    """The scenes kept in order while none of their captions fits a kept scene nor a kept caption fits them, so that
    every caption has exactly one correct image (as in COCO / Flickr30K)."""
    kept, by_shapes = [], {}
    for scene in scenes:
        alike = by_shapes.setdefault(tuple(sorted(item.pair for item in scene.objects)), [])
        if not any(_caption_fits(scene, split, other) or _caption_fits(other, split, scene) for other in alike):
            kept.append(scene)
            alike.append(scene)
    return kept


def load_shape_scenes_retrieval(split: str = "test", pairs: bool = False, max_samples: int | None = None,
                                root: str | os.PathLike | None = None,
                                num_images: int | None = None) -> datasets.Dataset:
    """Captioned scenes with the Karpathy loader's columns, two caption forms per image. `pairs=True` gives one row
    per caption (for training); the test split keeps a gallery in which every caption has one correct image."""
    _check_split(split)
    _check_max_samples(max_samples)
    scenes = shape_scenes_facts(split, root, num_images)
    if split == "test":
        scenes = _gallery(scenes, split)
    if pairs:
        rows = {"image_id": [], "image": [], "caption": []}
        for scene in scenes:
            for form in (0, 1):
                rows["image_id"].append(scene.image_id)
                rows["image"].append(scene.path)
                rows["caption"].append(scene_caption(scene, split, form))
        return datasets.Dataset.from_dict(_limit(rows, max_samples), features=KARPATHY_PAIR_FEATURES)
    rows = {
        "image_id": [scene.image_id for scene in scenes],
        "image": [scene.path for scene in scenes],
        "captions": [[scene_caption(scene, split, 0), scene_caption(scene, split, 1)] for scene in scenes],
    }
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=KARPATHY_IMAGE_FEATURES)


def _count_statement(noun: str, count: int) -> str:
    """"there are two red shapes", "there is one circle", "there are no triangles" (`noun` singular)."""
    return f"there {'is' if count == 1 else 'are'} {_NUMBER_WORDS[count]} {noun if count == 1 else noun + 's'}"


def _statement(scene: Scene, split: str, true: bool, rng: random.Random) -> str:
    """A statement about an attribute, a count or a relation of the scene that is true or clearly false."""
    objects = scene.objects
    facts = _relation_facts(objects)
    kind = rng.choice(("attribute", "count", "relation") if facts else ("attribute", "count"))
    if kind == "attribute":
        present = sorted({item.pair for item in objects}, key=_pairs("test").index)
        absent = [pair for pair in _pairs(split) if pair not in present]
        color, shape = rng.choice(present if true else absent)
        return f"there is a {color} {shape}"
    if kind == "count":
        colors = _counts(objects, "color", SHAPE_SCENES_COLORS)
        counts = {**_counts(objects, "shape", SHAPE_SCENES_SHAPES),
                  **{f"{color} shape": count for color, count in colors.items()}, "shape": len(objects)}
        noun = rng.choice(list(counts))
        count = counts[noun] if true else rng.choice([n for n in range(MAX_OBJECTS + 1) if n != counts[noun]])
        return _count_statement(noun, count)
    first, relation, second = rng.choice(facts)
    said = relation if true else _OPPOSITE[relation]
    return f"the {first.color} {first.shape} is {said} the {second.color} {second.shape}"


def _hypothesis(scene: Scene, split: str, label: str, rng: random.Random) -> str:
    """A statement with the given entailment label: true (entailment), clearly false (contradiction), or true with an
    unverifiable addition (neutral). Half of the contradictions carry an addition too, so that it alone does not
    mark a statement neutral."""
    statement = _statement(scene, split, label != "contradiction", rng)
    if label == "neutral" or (label == "contradiction" and rng.random() < 0.5):
        statement += f", and {rng.choice(_UNVERIFIABLE)}"
    return statement


def load_shape_scenes_entailment(split: str = "train", per_image: int = 3, max_samples: int | None = None,
                                 seed: int = 0, root: str | os.PathLike | None = None,
                                 num_images: int | None = None) -> datasets.Dataset:
    """Visual-entailment rows (SNLI-VE loader's columns) about the scenes' attributes, counts and relations; the
    premise is the scene's caption, and the three labels come equally often."""
    _check_split(split)
    _check_max_samples(max_samples)
    rows = {name: [] for name in SNLI_VE_FEATURES}
    for scene in shape_scenes_facts(split, root, num_images):
        rng = random.Random(f"shape-scenes-entailment-{split}-{seed}-{scene.image_id}")
        for index in range(per_image):
            label = (scene.image_id + index) % len(ENTAILMENT_LABELS)
            rows["pair_id"].append(f"{split}-{scene.image_id}-{index}")
            rows["image"].append(scene.path)
            rows["premise"].append(scene_caption(scene, split))
            rows["hypothesis"].append(_hypothesis(scene, split, ENTAILMENT_LABELS[label], rng))
            rows["label"].append(label)
    return datasets.Dataset.from_dict(_limit(rows, max_samples), features=SNLI_VE_FEATURES)
