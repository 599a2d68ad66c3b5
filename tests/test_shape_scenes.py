"""The shape scenes: drawn deterministically, held-out pairs only in test, exact COCO-panoptic masks, and questions,
captions and statements that agree with what the files show (read back from the PNGs, not from the generator)."""

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling_ashnets import ENTAILMENT_LABELS, get_task
from modeling_ashnets.data import shape_scenes
from modeling_ashnets.data.karpathy import KARPATHY_IMAGE_FEATURES, KARPATHY_PAIR_FEATURES
from modeling_ashnets.data.shape_scenes import (
    RELATION_MARGIN,
    SHAPE_SCENES_COLORS,
    SHAPE_SCENES_FEATURES,
    SHAPE_SCENES_HELD_OUT,
    SHAPE_SCENES_NUM_IMAGES,
    SHAPE_SCENES_QUESTION_TYPES,
    SHAPE_SCENES_RGB,
    SHAPE_SCENES_SHAPES,
    generate_shape_scenes,
    load_shape_scenes,
    load_shape_scenes_entailment,
    load_shape_scenes_retrieval,
    rgb_to_id,
    shape_scenes_answers,
    shape_scenes_facts,
    shape_scenes_panoptic_json,
)
from modeling_ashnets.data.snli_ve import SNLI_VE_FEATURES
from modeling_ashnets.data.vqa_v2 import VQA_V2_FEATURES


NUM_TRAIN, NUM_TEST = 200, 200
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shape_scenes")
    generate_shape_scenes("train", folder, NUM_TRAIN)
    generate_shape_scenes("test", folder, NUM_TEST)
    return folder


@pytest.fixture(scope="module")
def questions(root):
    return {split: load_shape_scenes(split, root=root, num_images=count)
            for split, count in (("train", NUM_TRAIN), ("test", NUM_TEST))}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ---------------------------------------------------------------------------------------------------------------------
# An independent reading of the files: what the PNGs show, with the JSON giving only segment ids and categories


def _read_objects(panoptic_json: Path) -> dict[int, list[dict]]:
    """image id -> its shapes as the image and panoptic PNGs show them: colour (the exact palette colour of all its
    pixels), shape (its category), size (its box's side), centre (of its pixels' box) and mask."""
    document = json.loads(panoptic_json.read_text())
    names = {category["id"]: category["name"] for category in document["categories"]}
    folder = panoptic_json.parent
    objects = {}
    for annotation in document["annotations"]:
        pixels = np.asarray(Image.open(folder / "images" / annotation["file_name"]))
        ids = rgb_to_id(np.asarray(Image.open(folder / "panoptic" / annotation["file_name"])))
        found = []
        for segment in annotation["segments_info"]:
            if names[segment["category_id"]] == "background":
                continue
            mask = ids == segment["id"]
            colors = {tuple(value) for value in pixels[mask].tolist()}
            assert len(colors) == 1, (annotation["file_name"], colors)
            rgb = colors.pop()
            color = next(name for name, palette_rgb in SHAPE_SCENES_RGB.items() if palette_rgb == rgb)
            rows, columns = np.nonzero(mask)
            found.append({"color": color, "shape": names[segment["category_id"]], "mask": mask,
                          "size": "large" if np.ptp(columns) > 20 else "small",
                          "center": ((columns.min() + columns.max()) / 2, (rows.min() + rows.max()) / 2)})
        objects[annotation["image_id"]] = found
    return objects


def _matching(objects, **wanted) -> list[dict]:
    return [item for item in objects if all(item[key] == value for key, value in wanted.items() if value)]


def _one(objects, **wanted) -> dict:
    found = _matching(objects, **wanted)
    assert len(found) == 1, f"{wanted} does not single out one shape"
    return found[0]


def _offset(first: dict, relation: str, second: dict) -> float:
    (first_x, first_y), (second_x, second_y) = first["center"], second["center"]
    return {"left of": second_x - first_x, "right of": first_x - second_x,
            "above": second_y - first_y, "below": first_y - second_y}[relation]


_WORD = r"(\w+)"
_RELATION = r"(left of|right of|above|below)"


def _answer(question: str, objects: list[dict]) -> str:
    """The answer to a question, worked out from the shapes read off the files."""
    text = question.rstrip("?")
    if text == "how many shapes are there":
        return str(len(objects))
    if match := re.fullmatch(rf"how many {_WORD}s are there", text):
        return str(len(_matching(objects, shape=match[1])))
    if match := re.fullmatch(rf"how many {_WORD} shapes are there", text):
        return str(len(_matching(objects, color=match[1])))
    if match := re.fullmatch(rf"is there a {_WORD} shape", text):
        return "yes" if _matching(objects, color=match[1]) else "no"
    if match := re.fullmatch(rf"is there a {_WORD} {_WORD}", text):
        return "yes" if _matching(objects, color=match[1], shape=match[2]) else "no"
    if match := re.fullmatch(rf"is there a {_WORD}", text):
        return "yes" if _matching(objects, shape=match[1]) else "no"
    if match := re.fullmatch(rf"what color is the (?:(small|large) )?{_WORD}", text):
        return _one(objects, size=match[1], shape=match[2])["color"]
    if match := re.fullmatch(rf"what shape is the (?:(small|large) )?{_WORD} object", text):
        return _one(objects, size=match[1], color=match[2])["shape"]
    if match := re.fullmatch(rf"is the {_WORD} {_WORD} {_RELATION} the {_WORD} {_WORD}", text):
        first, second = _one(objects, color=match[1], shape=match[2]), _one(objects, color=match[4], shape=match[5])
        offset = _offset(first, match[3], second)
        assert abs(offset) >= RELATION_MARGIN, f"{question}: the centres are {offset} pixels apart, ambiguous"
        return "yes" if offset > 0 else "no"
    raise AssertionError(f"unknown question form: {question!r}")


def _statement_holds(statement: str, objects: list[dict]) -> bool:
    """Whether an entailment statement (its unverifiable addition removed) is true of the shapes read off the files."""
    if match := re.fullmatch(rf"there is a {_WORD} {_WORD}", statement):
        return bool(_matching(objects, color=match[1], shape=match[2]))
    if match := re.fullmatch(rf"there (?:is|are) {_WORD} (?:{_WORD} )?{_WORD}", statement):
        count = NUMBER_WORDS.index(match[1])
        noun = match[3].removesuffix("s")
        found = objects if noun == "shape" else _matching(objects, shape=noun)
        return len(_matching(found, color=match[2])) == count
    if match := re.fullmatch(rf"the {_WORD} {_WORD} is {_RELATION} the {_WORD} {_WORD}", statement):
        first, second = _one(objects, color=match[1], shape=match[2]), _one(objects, color=match[4], shape=match[5])
        offset = _offset(first, match[3], second)
        assert abs(offset) >= RELATION_MARGIN, f"{statement}: the centres are {offset} pixels apart, ambiguous"
        return offset > 0
    raise AssertionError(f"unknown statement form: {statement!r}")


def _template(question: str) -> str:
    """The question with its colours, shapes and sizes blanked out: "is there a X X?"."""
    words = (*SHAPE_SCENES_COLORS, *SHAPE_SCENES_SHAPES, *(f"{shape}s" for shape in SHAPE_SCENES_SHAPES), "small",
             "large")
    return re.sub(rf"\b({'|'.join(words)})\b", "X", question)


# ---------------------------------------------------------------------------------------------------------------------
# Scenes and files


def test_scenes_are_the_same_bytes_in_any_root_and_any_order(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    generate_shape_scenes("train", first, 6)
    generate_shape_scenes("test", first, 6)
    generate_shape_scenes("test", second, 6)  # the other order
    generate_shape_scenes("train", second, 6)
    assert _files(first) == _files(second)
    assert sorted(path.name for path in first.iterdir()) == ["test-6", "train-6"]
    # A smaller split is the start of a larger one.
    larger, smaller = _files(first / "test-6"), _files(generate_shape_scenes("test", first, 3))
    assert sorted(smaller) == ["images/000000.png", "images/000001.png", "images/000002.png", "panoptic/000000.png",
                               "panoptic/000001.png", "panoptic/000002.png", "panoptic_test.json"]
    assert all(larger[name] == data for name, data in smaller.items() if name.endswith(".png"))
    annotations = [json.loads(files["panoptic_test.json"])["annotations"] for files in (larger, smaller)]
    assert annotations[0][:3] == annotations[1]


def test_scenes_do_not_depend_on_hash_randomisation(tmp_path):
    """Each pytest run has its own hash seed, so a digest that held once holds only if nothing depends on it (such
    as the order of a set of strings). Pixels are hashed decoded, so another zlib's PNG bytes do not matter; the
    questions, captions and statements derived from the scenes are hashed too."""
    folder = generate_shape_scenes("test", tmp_path, 4)
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.png")):
        digest.update(str(path.relative_to(folder)).encode() + np.asarray(Image.open(path)).tobytes())
    digest.update((folder / "panoptic_test.json").read_bytes())
    assert digest.hexdigest() == "55636faaefe7359a91c11bff389dae29327f25a0f18faa74f93f1abaf577aa0b"
    questions = load_shape_scenes("test", root=tmp_path, num_images=4)
    captions = load_shape_scenes_retrieval("test", root=tmp_path, num_images=4)
    statements = load_shape_scenes_entailment("test", root=tmp_path, num_images=4)
    texts = json.dumps([list(questions["question"]), list(questions["answers"]), list(captions["captions"]),
                        list(statements["hypothesis"])])
    text_digest = hashlib.sha256(texts.encode()).hexdigest()
    assert text_digest == "c3e61e189e0c7d02d4608e2b084318d11bbd1df918021f1dc6fca69b38da3b6d"


def test_generation_is_reused_and_an_interrupted_one_leaves_nothing(tmp_path, monkeypatch):
    folder = generate_shape_scenes("test", tmp_path, 3)
    before = {path: path.stat().st_mtime_ns for path in folder.rglob("*")}
    assert generate_shape_scenes("test", tmp_path, 3) == folder
    assert {path: path.stat().st_mtime_ns for path in folder.rglob("*")} == before

    drawn = []
    real_draw = shape_scenes._draw_scene

    def interrupted_draw(plan):
        drawn.append(plan)
        if len(drawn) == 3:
            raise KeyboardInterrupt
        return real_draw(plan)

    monkeypatch.setattr(shape_scenes, "_draw_scene", interrupted_draw)
    with pytest.raises(KeyboardInterrupt):
        generate_shape_scenes("train", tmp_path, 5)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["test-3"]  # no train-5, no partial folder
    monkeypatch.undo()
    complete = generate_shape_scenes("train", tmp_path, 5)
    assert len(list((complete / "images").iterdir())) == 5


def test_cache_folder_comes_from_root_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ASHNETS_SHAPE_SCENES_DIR", str(tmp_path / "from-env"))
    assert shape_scenes_panoptic_json("test", num_images=2) == tmp_path / "from-env" / "test-2" / "panoptic_test.json"
    assert shape_scenes_panoptic_json("test", tmp_path / "given", 2).parent == tmp_path / "given" / "test-2"
    monkeypatch.delenv("ASHNETS_SHAPE_SCENES_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert shape_scenes._root(None) == tmp_path / "home" / ".cache" / "ashnets" / "shape_scenes" / "v1"


def test_held_out_pairs_only_in_test(root):
    train = {item.pair for scene in shape_scenes_facts("train", root, NUM_TRAIN) for item in scene.objects}
    test = {item.pair for scene in shape_scenes_facts("test", root, NUM_TEST) for item in scene.objects}
    assert not train & set(SHAPE_SCENES_HELD_OUT)
    assert len(train) == 18 - len(SHAPE_SCENES_HELD_OUT) and len(test) == 18
    counts = Counter(len(scene.objects) for scene in shape_scenes_facts("test", root, NUM_TEST))
    assert set(counts) == {2, 3, 4, 5}


def test_panoptic_masks_are_exact_and_agree_with_the_json(root):
    for split, count in (("train", NUM_TRAIN), ("test", NUM_TEST)):
        path = shape_scenes_panoptic_json(split, root, count)
        document = json.loads(path.read_text())
        categories = {category["id"]: category for category in document["categories"]}
        assert {(category["name"], category["isthing"]) for category in categories.values()} == {
            ("circle", 1), ("square", 1), ("triangle", 1), ("background", 0)}
        assert [image["id"] for image in document["images"]] == list(range(count))
        assert [annotation["image_id"] for annotation in document["annotations"]] == list(range(count))
        for annotation in document["annotations"]:
            pixels = np.asarray(Image.open(path.parent / "images" / annotation["file_name"]))
            assert pixels.shape == (96, 96, 3)
            ids = rgb_to_id(np.asarray(Image.open(path.parent / "panoptic" / annotation["file_name"])))
            segments = annotation["segments_info"]
            assert sorted(np.unique(ids).tolist()) == sorted(segment["id"] for segment in segments)  # no VOID pixel
            things = np.zeros(ids.shape, dtype=int)
            for segment in segments:
                mask = ids == segment["id"]
                rows, columns = np.nonzero(mask)
                box = [columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1]
                assert segment["area"] == mask.sum() and segment["bbox"] == [int(value) for value in box]
                assert segment["iscrowd"] == 0
                category = categories[segment["category_id"]]
                rgb = SHAPE_SCENES_RGB[segment["color"]] if category["isthing"] else (255, 255, 255)
                # The segment is exactly the pixels of its colour, within its box (shapes may share a colour).
                x, y, width, height = segment["bbox"]
                window = (slice(y, y + height), slice(x, x + width))
                same_color = (pixels[window] == rgb).all(axis=-1)
                if category["isthing"]:
                    assert (same_color == mask[window]).all(), (annotation["file_name"], segment["id"])
                    fill = segment["area"] / (width * height)  # a square fills its box, a circle ~pi/4, a triangle ~1/2
                    expected = {"square": 1.0, "circle": 0.785, "triangle": 0.5}[category["name"]]
                    assert abs(fill - expected) < 0.06 and width == height
                    # Masks never touch: grown by one pixel (8 neighbours), a shape meets no other shape.
                    grown = np.zeros((98, 98), dtype=bool)
                    for dy in range(3):
                        for dx in range(3):
                            grown[dy:dy + 96, dx:dx + 96] |= mask
                    assert not (grown[1:97, 1:97] & (things > 0)).any()
                    things[mask] = segment["id"]
                else:
                    assert (same_color == mask[window]).all() and (pixels[mask] == 255).all()


# ---------------------------------------------------------------------------------------------------------------------
# Questions


def test_every_answer_agrees_with_the_files(root, questions):
    for split, count in (("train", NUM_TRAIN), ("test", NUM_TEST)):
        objects = _read_objects(shape_scenes_panoptic_json(split, root, count))
        rows = questions[split]
        for row in rows:
            assert _answer(row["question"], objects[row["image_id"]]) == row["answers"][0], row
        per_image = Counter(rows["image_id"])
        assert len(per_image) == count and min(per_image.values()) >= 8 and max(per_image.values()) <= 10


def _pair_asked_about(row) -> tuple[str, str] | None:
    """The colour-shape pair that an attribute question's answer completes ("what color is the circle?" - "blue")."""
    words = row["question"].rstrip("?").split()
    if words[:2] == ["what", "color"]:
        return row["answers"][0], words[-1]
    if words[:2] == ["what", "shape"]:
        return words[-2], row["answers"][0]
    return None


def test_question_kinds_and_held_out_questions(questions):
    train, test = questions["train"], questions["test"]
    assert set(train["question_type"]) == {"attribute", "count", "relation"}
    assert set(test["question_type"]) == set(SHAPE_SCENES_QUESTION_TYPES)
    held_out_words = [f"{color} {shape}" for color, shape in SHAPE_SCENES_HELD_OUT]
    assert not [question for question in train["question"] if any(words in question for words in held_out_words)]
    for row in test:
        named = any(words in row["question"] for words in held_out_words)
        asked_about = _pair_asked_about(row) in SHAPE_SCENES_HELD_OUT
        assert (row["question_type"] == "held-out combination") == (named or asked_about), row
    assert Counter(test["question_type"])["held-out combination"] > 0.05 * len(test)
    kinds = {(row["question"].split()[0], row["answer_type"]) for split in questions.values() for row in split}
    assert kinds == {("is", "yes/no"), ("how", "number"), ("what", "other")}


def test_yes_no_answers_are_balanced_and_counts_spread(questions):
    answers = defaultdict(Counter)
    for split in questions.values():
        for row in split:
            answers[_template(row["question"])][row["answers"][0]] += 1
    relation_words = ("left of", "right of", "above", "below")
    for template, counts in answers.items():
        total = sum(counts.values())
        if template.startswith("is there"):
            assert counts["yes"] == counts["no"], (template, counts)  # asked in yes / no pairs
        elif template.startswith("is the"):
            assert 0.35 < counts["yes"] / total < 0.65, (template, counts)
        elif template.startswith("how many"):
            assert counts.most_common(1)[0][1] / total < 0.4 and len(counts) >= 4, (template, counts)
    relation = Counter()
    for template, counts in answers.items():
        if any(word in template for word in relation_words):
            relation.update(counts)
    assert abs(relation["yes"] - relation["no"]) <= 0.05 * sum(relation.values()), relation


def test_vqa_rows_have_the_vqa_v2_columns_and_panoptic(root, questions):
    rows = questions["test"]
    assert rows.features == SHAPE_SCENES_FEATURES
    assert rows.column_names == [*VQA_V2_FEATURES, "panoptic"]
    answers = shape_scenes_answers()
    assert len(answers) == len(set(answers)) == 17
    for row in rows.select(range(20)):
        assert Path(row["image"]).is_file() and Path(row["panoptic"]).is_file()
        assert row["image"].replace("/images/", "/panoptic/") == row["panoptic"]
        assert answers[row["labels"][0]] == row["answers"][0] and row["scores"] == [1.0]
    assert rows["question_id"] == list(range(len(rows)))
    assert load_shape_scenes("test", max_samples=7, root=root, num_images=NUM_TEST)["question"] == rows["question"][:7]
    assert get_task("vqa").loader("shape-scenes") is load_shape_scenes
    assert get_task("retrieval").loader("shape-scenes") is load_shape_scenes_retrieval
    assert get_task("entailment").loader("shape-scenes") is load_shape_scenes_entailment


# ---------------------------------------------------------------------------------------------------------------------
# Derived sets


def _listed(caption: str) -> Counter:
    """The colour-shape pairs that caption form 1 lists ("three shapes: two red circles and a blue square; ...")."""
    listing = caption.split(": ", 1)[1].split(";")[0]
    pairs = Counter()
    for phrase in re.split(r", | and ", listing):
        number, color, shape = phrase.split()
        pairs[(color, shape.removesuffix("s"))] += 1 if number == "a" else NUMBER_WORDS.index(number)
    return pairs


def test_retrieval_captions_are_true_and_single_out_one_gallery_image(root):
    gallery = load_shape_scenes_retrieval("test", root=root, num_images=NUM_TEST)
    assert gallery.features == KARPATHY_IMAGE_FEATURES and 0.6 * NUM_TEST < len(gallery) <= NUM_TEST
    objects = _read_objects(shape_scenes_panoptic_json("test", root, NUM_TEST))
    shown = {image_id: Counter((item["color"], item["shape"]) for item in objects[image_id])
             for image_id in gallery["image_id"]}
    for image_id, (short, long) in zip(gallery["image_id"], gallery["captions"]):
        assert long.startswith(f"{NUMBER_WORDS[len(objects[image_id])]} shapes: ")
        assert _listed(long) == shown[image_id]
        if ";" in long:
            relation = long.split("; ", 1)[1]
            assert _statement_holds(relation, objects[image_id])
            first = relation.removeprefix("the ").split(" is ")[0]
            assert short.startswith(f"a {first} ")
            # No other gallery image shows the same shapes with the relation not clearly false.
            match = re.fullmatch(rf"the {_WORD} {_WORD} is {_RELATION} the {_WORD} {_WORD}", relation)
            fits = [other for other in gallery["image_id"] if shown[other] == shown[image_id] and _offset(
                _one(objects[other], color=match[1], shape=match[2]), match[3],
                _one(objects[other], color=match[4], shape=match[5])) > -RELATION_MARGIN]
        else:
            fits = [other for other in gallery["image_id"] if shown[other] == shown[image_id]]
        assert fits == [image_id], (long, fits)
    pairs = load_shape_scenes_retrieval("train", pairs=True, root=root, num_images=NUM_TRAIN)
    assert pairs.features == KARPATHY_PAIR_FEATURES and len(pairs) == 2 * NUM_TRAIN
    assert pairs[0]["caption"] != pairs[1]["caption"] and pairs[0]["image"] == pairs[1]["image"]


def test_entailment_labels_are_balanced_and_right(root):
    rows = load_shape_scenes_entailment("test", root=root, num_images=NUM_TEST)
    assert rows.features == SNLI_VE_FEATURES and len(rows) == 3 * NUM_TEST
    assert set(Counter(rows["label"]).values()) == {NUM_TEST}
    objects = _read_objects(shape_scenes_panoptic_json("test", root, NUM_TEST))
    kinds = set()
    for row in rows:
        statement, _, addition = row["hypothesis"].partition(", and ")
        label = ENTAILMENT_LABELS[row["label"]]
        image_id = int(row["pair_id"].split("-")[1])
        assert _statement_holds(statement, objects[image_id]) == (label != "contradiction"), row
        assert bool(addition) == (label == "neutral") or label == "contradiction", row
        counted = re.match(r"there (is|are) (no|one|two|three|four|five) ", statement)
        kinds.add("relation" if statement.startswith("the ") else "count" if counted else "attribute")
    assert kinds == {"attribute", "count", "relation"}
    assert len(load_shape_scenes_entailment("train", max_samples=5, root=root, num_images=NUM_TRAIN)) == 5


def test_example_scripts_load_shape_scenes(tmp_path, monkeypatch):
    from examples import run_entailment, run_retrieval, run_vqa

    monkeypatch.setenv("ASHNETS_SHAPE_SCENES_DIR", str(tmp_path))
    monkeypatch.setitem(SHAPE_SCENES_NUM_IMAGES, "train", 12)  # the default sizes, made small for the test
    monkeypatch.setitem(SHAPE_SCENES_NUM_IMAGES, "test", 6)
    train, evaluation, answers = run_vqa.load_data(run_vqa.DataArguments(dataset="shape-scenes"))
    assert answers == shape_scenes_answers() and set(train["image_id"]) == set(range(12))
    assert set(evaluation["image_id"]) == set(range(6)) and evaluation.features == SHAPE_SCENES_FEATURES
    assert sorted(path.name for path in tmp_path.iterdir()) == ["test-6", "train-12"]
    pairs, gallery = run_retrieval.load_data(run_retrieval.DataArguments(dataset="shape-scenes"))
    assert len(pairs) == 24 and 0 < len(gallery) <= 6
    train, evaluation = run_entailment.load_data(run_entailment.DataArguments(dataset="shape-scenes"))
    assert (len(train), len(evaluation)) == (36, 18)


@pytest.mark.parametrize("load", [load_shape_scenes, load_shape_scenes_retrieval, load_shape_scenes_entailment,
                                  generate_shape_scenes, shape_scenes_panoptic_json])
def test_bad_arguments_are_named(load, tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\).*'validation'"):
        load("validation", root=tmp_path)
    with pytest.raises(ValueError, match="num_images must be None or a positive integer, got 0"):
        load("test", root=tmp_path, num_images=0)
    if load not in (generate_shape_scenes, shape_scenes_panoptic_json):
        with pytest.raises(ValueError, match="max_samples must be None or a non-negative integer, got -1"):
            load("test", max_samples=-1, root=tmp_path, num_images=2)
    assert not any(tmp_path.iterdir())  # checked before anything is drawn


@pytest.mark.parametrize("task_name", ["vqa", "retrieval", "entailment"])
def test_collator_takes_the_rows(task_name, root, processor):
    from modeling_ashnets.data.collators import AshNetsCollator

    split, options = ("train", {"pairs": True}) if task_name == "retrieval" else ("test", {})
    load = get_task(task_name).loader("shape-scenes")
    count = NUM_TRAIN if split == "train" else NUM_TEST
    rows = list(load(split, max_samples=3, root=root, num_images=count, **options))
    num_labels = len(shape_scenes_answers()) if task_name == "vqa" else len(ENTAILMENT_LABELS)
    batch = AshNetsCollator(processor, task_name, num_labels=num_labels)(rows)
    assert batch["skipped"] == [] and batch["inputs"]["pixel_values"].shape[0] == 3
