"""The downstream data loaders read small files written here in each official format, with real image files."""

import io
import json
import os

import datasets
import pytest
from PIL import Image

from modeling_ashnets.data.hub import HUB_DATASETS, HUB_TASK_FEATURES, load_hub_dataset
from modeling_ashnets.data.karpathy import KARPATHY_IMAGE_FEATURES, load_karpathy
from modeling_ashnets.data.nlvr2 import NLVR2_FEATURES, load_nlvr2, nlvr2_image_paths
from modeling_ashnets.data.snli_ve import ENTAILMENT_LABELS, SNLI_VE_FEATURES, load_snli_ve
from modeling_ashnets.data.vqa_v2 import VQA_V2_FEATURES, build_answer_vocabulary, load_vqa_v2, vqa_soft_score


datasets.disable_progress_bars()


@pytest.fixture(autouse=True)
def datasets_cache_in_tmp_path(tmp_path, monkeypatch):
    """Builders (even streaming ones) write lock files into the 🤗 Datasets cache: keep them out of the user's."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets_cache"))


def write_image(path, color, image_format):
    """A real 8x8 image file (PNG or JPEG)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path, format=image_format)
    return str(path)


def write_json(path, value):
    path.write_text(json.dumps(value))
    return str(path)


def write_json_lines(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def assert_same_vqa_rows(streamed, loaded):
    """Rows equal; the float32 `scores` compared at float32 precision."""
    assert len(streamed) == len(loaded) > 0
    for streamed_row, loaded_row in zip(streamed, loaded):
        assert streamed_row["scores"] == pytest.approx(loaded_row["scores"], rel=1e-6)
        assert {**streamed_row, "scores": None} == {**loaded_row, "scores": None}


# ---------------------------------------------------------------------------------------------------- VQA v2


def human_answers(*answers):
    return [{"answer": answer, "answer_confidence": "yes", "answer_id": i + 1} for i, answer in enumerate(answers)]


@pytest.fixture
def vqa_files(tmp_path):
    """val2014-style questions + annotations for 4 questions about 2 images; image 42 has no file on disk."""
    image_dir = tmp_path / "val2014"
    write_image(image_dir / "COCO_val2014_000000000009.jpg", (200, 30, 30), "JPEG")
    questions = [
        {"image_id": 9, "question": "Is there a dog?", "question_id": 9000},
        {"image_id": 9, "question": "How many dogs?", "question_id": 9001},
        {"image_id": 9, "question": "What color is the ball?", "question_id": 9002},
        {"image_id": 42, "question": "Is it sunny?", "question_id": 42000},
    ]
    annotations = [
        {"question_id": 9000, "image_id": 9, "question_type": "is there a", "answer_type": "yes/no",
         "multiple_choice_answer": "yes", "answers": human_answers(*["yes"] * 10)},
        {"question_id": 9001, "image_id": 9, "question_type": "how many", "answer_type": "number",
         "multiple_choice_answer": "2", "answers": human_answers("2", "two", "Two", "2", *["3"] * 6)},
        {"question_id": 9002, "image_id": 9, "question_type": "what color is the", "answer_type": "other",
         "multiple_choice_answer": "red", "answers": human_answers("red", "Red", *["maroon"] * 8)},
        {"question_id": 42000, "image_id": 42, "question_type": "is it", "answer_type": "yes/no",
         "multiple_choice_answer": "Yes.", "answers": human_answers(*["yes"] * 5, "two", *["no"] * 4)},
    ]
    header = {"info": {}, "license": {}, "data_type": "mscoco", "data_subtype": "val2014"}
    return {
        "questions": write_json(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json",
                                {**header, "task_type": "Open-Ended", "questions": questions}),
        "annotations": write_json(
            tmp_path / "v2_mscoco_val2014_annotations.json", {**header, "annotations": annotations}
        ),
        "image_dir": str(image_dir),
        "tmp_path": tmp_path,
    }


def test_vqa_soft_score():
    assert [vqa_soft_score(count) for count in range(5)] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])


def test_answer_vocabulary_counts_normalised_answers_and_breaks_ties_by_string(vqa_files):
    # "yes" twice ("yes" and "Yes."), then "2" and "red" once each: the tie is broken alphabetically.
    assert build_answer_vocabulary(vqa_files["annotations"]) == ["yes", "2", "red"]
    assert build_answer_vocabulary([vqa_files["annotations"]], top_k=2) == ["yes", "2"]


def test_vqa_rows_join_questions_and_annotations(vqa_files):
    dataset = load_vqa_v2(vqa_files["questions"], vqa_files["image_dir"], vqa_files["annotations"],
                          answer_vocabulary=["yes", "2", "red"])
    assert isinstance(dataset, datasets.Dataset)
    assert dataset.features == VQA_V2_FEATURES
    rows = list(dataset)
    assert [row["question_id"] for row in rows] == [9000, 9001, 9002, 42000]
    first = rows[0]
    assert first["image"] == os.path.join(vqa_files["image_dir"], "COCO_val2014_000000000009.jpg")
    assert os.path.isfile(first["image"])
    assert (first["image_id"], first["question"], first["question_type"], first["answer_type"]) == (
        9, "Is there a dog?", "is there a", "yes/no")
    assert first["answers"] == ["yes"] * 10 and first["labels"] == [0] and first["scores"] == [1.0]
    # "2", "two", "Two" all normalise to "2" (4 annotators); "3" is not in the vocabulary.
    assert (rows[1]["labels"], rows[1]["scores"]) == ([1], [1.0])
    assert rows[1]["answers"][:3] == ["2", "two", "Two"]  # the raw answers, for the official metric
    # "red" and "Red" (2 annotators): 2/3; "maroon" is out of the vocabulary and only dropped from the labels.
    assert rows[2]["labels"] == [2] and rows[2]["scores"] == pytest.approx([2 / 3])
    assert len(rows[2]["answers"]) == 10
    # Two answers in the vocabulary, in id order.
    assert rows[3]["labels"] == [0, 1] and rows[3]["scores"] == pytest.approx([1.0, 1 / 3])


def test_vqa_missing_image_file_does_not_fail_the_loader(vqa_files):
    rows = list(load_vqa_v2(vqa_files["questions"], vqa_files["image_dir"], vqa_files["annotations"]))
    assert rows[3]["image"] == os.path.join(vqa_files["image_dir"], "COCO_val2014_000000000042.jpg")
    assert not os.path.exists(rows[3]["image"])
    assert rows[3]["labels"] == [] and rows[3]["scores"] == []  # no vocabulary given


def test_vqa_streaming_matches_and_shards_per_file(vqa_files):
    arguments = (vqa_files["questions"], vqa_files["image_dir"], vqa_files["annotations"], ["yes", "2", "red"])
    streamed = load_vqa_v2(*arguments, streaming=True)
    assert isinstance(streamed, datasets.IterableDataset)
    assert streamed.features == VQA_V2_FEATURES and streamed.n_shards == 1
    assert_same_vqa_rows(list(streamed), list(load_vqa_v2(*arguments)))
    both = load_vqa_v2(
        [vqa_files["questions"]] * 2, vqa_files["image_dir"], [vqa_files["annotations"]] * 2, streaming=True
    )
    assert both.n_shards == 2 and len(list(both)) == 8
    assert len(list(load_vqa_v2(*arguments, streaming=True, max_samples=3))) == 3
    assert len(load_vqa_v2(*arguments, max_samples=2)) == 2


def test_vqa_test_split_without_annotations(vqa_files, tmp_path):
    questions = json.loads(open(vqa_files["questions"]).read())
    questions["data_subtype"] = "test-dev2015"
    path = write_json(tmp_path / "v2_OpenEnded_mscoco_test-dev2015_questions.json", questions)
    rows = list(load_vqa_v2(path, "test2015", answer_vocabulary=["yes"]))
    assert len(rows) == 4
    assert rows[0]["answers"] == [] and rows[0]["labels"] == [] and rows[0]["question_type"] == ""
    assert rows[0]["image"] == os.path.join("test2015", "COCO_test2015_000000000009.jpg")  # test-dev uses test2015
    coco2017 = list(load_vqa_v2(path, "val2017", image_name_format="{image_id:012d}.jpg"))
    assert coco2017[0]["image"] == os.path.join("val2017", "000000000009.jpg")


def test_vqa_errors_name_the_problem(vqa_files, tmp_path):
    questions, annotations, image_dir = vqa_files["questions"], vqa_files["annotations"], vqa_files["image_dir"]
    missing = str(tmp_path / "v2_OpenEnded_mscoco_train2014_questions.json")
    with pytest.raises(FileNotFoundError, match="questions file not found: .*train2014_questions.json"):
        load_vqa_v2(missing, image_dir)
    with pytest.raises(ValueError, match="has no 'questions' key.*VQA v2 questions file"):
        load_vqa_v2(annotations, image_dir)  # the annotations file passed as the questions file
    broken = tmp_path / "broken.json"
    broken.write_text('{"questions": [')
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        load_vqa_v2(str(broken), image_dir, streaming=True)
    document = json.loads(open(annotations).read())
    document["annotations"] = document["annotations"][1:]
    fewer = write_json(tmp_path / "fewer_annotations.json", document)
    mismatch = r"1 of the 4 question_ids .* have no annotation in .*fewer_annotations.json \(first: \[9000\]\)"
    with pytest.raises(ValueError, match=mismatch):
        load_vqa_v2(questions, image_dir, fewer)
    with pytest.raises(ValueError, match="1 of the 4 question_ids"):
        load_vqa_v2(questions, image_dir, fewer, streaming=True)  # raised before returning, not during iteration
    document = json.loads(open(questions).read())
    del document["questions"][2]["question"]
    with pytest.raises(ValueError, match="entry 2 of 'questions' lacks 'question'"):
        load_vqa_v2(write_json(tmp_path / "no_question_text.json", document), image_dir)


# ---------------------------------------------------------------------------------------------------- Karpathy


def sentences(*texts):
    return [{"raw": text, "tokens": text.lower().split(), "imgid": 0, "sentid": i} for i, text in enumerate(texts)]


@pytest.fixture
def coco_karpathy(tmp_path):
    entries = [
        ("train2014", "COCO_train2014_000000000009.jpg", 9, "train", ["A plate of food.", "Food on a table."]),
        ("val2014", "COCO_val2014_000000000042.jpg", 42, "restval", ["A dog runs."]),
        ("val2014", "COCO_val2014_000000000073.jpg", 73, "val", ["A red bus."]),
        ("val2014", "COCO_val2014_000000000074.jpg", 74, "test", ["Two cats sleep. ", "Cats on a bed."]),
    ]
    images = []
    for imgid, (filepath, filename, cocoid, split, texts) in enumerate(entries):
        write_image(tmp_path / "coco" / filepath / filename, (imgid * 60, 90, 120), "JPEG")
        images.append({"filepath": filepath, "filename": filename, "imgid": imgid, "split": split,
                       "sentids": list(range(len(texts))), "sentences": sentences(*texts), "cocoid": cocoid})
    return write_json(tmp_path / "dataset_coco.json", {"images": images, "dataset": "coco"}), str(tmp_path / "coco")


def test_karpathy_image_rows_and_restval(coco_karpathy):
    json_file, image_root = coco_karpathy
    test = load_karpathy(json_file, image_root, split="test")
    assert test.features == KARPATHY_IMAGE_FEATURES
    image = os.path.join(image_root, "val2014", "COCO_val2014_000000000074.jpg")
    assert list(test) == [{"image_id": 74, "image": image, "captions": ["Two cats sleep.", "Cats on a bed."]}]
    assert os.path.isfile(test[0]["image"])
    assert load_karpathy(json_file, image_root, split="train")["image_id"] == [9, 42]  # restval included
    assert load_karpathy(json_file, image_root, split="train", include_restval=False)["image_id"] == [9]
    assert load_karpathy(json_file, image_root, split="restval")["image_id"] == [42]


def test_karpathy_pairs_for_training_and_streaming(coco_karpathy):
    json_file, image_root = coco_karpathy
    pairs = load_karpathy(json_file, image_root, split="train", pairs=True)
    assert pairs.column_names == ["image_id", "image", "caption"]
    assert [(row["image_id"], row["caption"]) for row in pairs] == [
        (9, "A plate of food."), (9, "Food on a table."), (42, "A dog runs.")]
    streamed = load_karpathy(json_file, image_root, split="train", pairs=True, streaming=True)
    assert streamed.features == pairs.features
    assert list(streamed) == list(pairs)
    first = load_karpathy(json_file, image_root, split="train", pairs=True, streaming=True, max_samples=1)
    assert list(first) == [pairs[0]]


def test_karpathy_flickr_has_no_filepath_and_uses_imgid(tmp_path):
    images = [{"filename": "1000092795.jpg", "imgid": 0, "split": "test", "sentids": [0],
               "sentences": sentences("Two young guys with shaggy hair.")},
              {"filename": "10002456.jpg", "imgid": 1, "split": "train", "sentids": [1],
               "sentences": sentences("Workers.")}]
    write_image(tmp_path / "flickr30k-images" / "1000092795.jpg", (10, 200, 10), "JPEG")
    json_file = write_json(tmp_path / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"})
    rows = list(load_karpathy(json_file, tmp_path / "flickr30k-images", split="test"))
    assert rows == [{"image_id": 0, "image": os.path.join(tmp_path, "flickr30k-images", "1000092795.jpg"),
                     "captions": ["Two young guys with shaggy hair."]}]


def test_karpathy_errors(coco_karpathy, tmp_path):
    json_file, image_root = coco_karpathy
    with pytest.raises(ValueError, match="split must be one of"):
        load_karpathy(json_file, image_root, split="validation")
    with pytest.raises(FileNotFoundError, match="Karpathy split file not found: .*dataset_f30k.json"):
        load_karpathy(str(tmp_path / "dataset_f30k.json"), image_root)
    wrong = write_json(tmp_path / "captions_val2014.json", {"annotations": [], "images": {}})
    with pytest.raises(ValueError, match="'images' is a dict, not a list; expected the Karpathy split file"):
        load_karpathy(wrong, image_root)
    wrong = write_json(tmp_path / "no_images.json", {"annotations": []})
    with pytest.raises(ValueError, match=r"has no 'images' key \(its keys: \['annotations'\]\)"):
        load_karpathy(wrong, image_root, streaming=True)


# ---------------------------------------------------------------------------------------------------- SNLI-VE


def snli_record(image, label, hypothesis, pair_id, key="Flikr30kID"):
    return {key: image, "gold_label": label, "sentence1": "Two dogs play in the snow.", "sentence2": hypothesis,
            "pairID": pair_id, "captionID": f"{image}#0", "annotator_labels": [label]}


def test_snli_ve_rows_labels_and_streaming(tmp_path):
    image_dir = tmp_path / "flickr30k-images"
    write_image(image_dir / "3416050480.jpg", (20, 20, 220), "JPEG")
    records = [snli_record("3416050480.jpg", "entailment", "Animals are outside.", "3416050480.jpg#0r1e"),
               snli_record("3416050480.jpg", "neutral", "The dogs are brothers.", "3416050480.jpg#0r1n"),
               snli_record("2267923837", "contradiction", "The cats sleep.", "2267923837.jpg#2r1c", key="Flickr30K_ID")]
    path = tmp_path / "snli_ve_dev.jsonl"
    write_json_lines(path, records)
    path.write_text(path.read_text() + "\n")  # a trailing blank line is allowed
    dataset = load_snli_ve(str(path), image_dir)
    assert dataset.features == SNLI_VE_FEATURES
    assert dataset["label"] == [0, 1, 2] and ENTAILMENT_LABELS[dataset["label"][2]] == "contradiction"
    assert dataset[0] == {"pair_id": "3416050480.jpg#0r1e", "image": os.path.join(image_dir, "3416050480.jpg"),
                          "premise": "Two dogs play in the snow.", "hypothesis": "Animals are outside.", "label": 0}
    assert os.path.isfile(dataset[0]["image"])
    assert dataset[2]["image"] == os.path.join(image_dir, "2267923837.jpg")  # no file: still a row
    streamed = load_snli_ve([str(path), str(path)], image_dir, streaming=True)
    assert streamed.n_shards == 2 and streamed.features == SNLI_VE_FEATURES
    assert list(streamed) == list(dataset) * 2


def test_snli_ve_errors_give_file_and_line(tmp_path):
    good = snli_record("1.jpg", "entailment", "A hypothesis.", "p1")
    path = write_json_lines(tmp_path / "snli_ve_train.jsonl", [good, {**good, "gold_label": "-"}])
    with pytest.raises(ValueError, match=r"snli_ve_train.jsonl, line 2: unknown gold_label '-'"):
        load_snli_ve(path, tmp_path)
    with pytest.raises(ValueError, match=r"line 2: unknown gold_label '-'"):
        load_snli_ve(path, tmp_path, streaming=True)
    broken = tmp_path / "snli_ve_test.jsonl"
    broken.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n" + '{"Flikr30kID": "2.jpg", "gold_label"\n')
    with pytest.raises(ValueError, match=r"snli_ve_test.jsonl, line 3: not valid JSON"):
        load_snli_ve(str(broken), tmp_path)
    no_image = write_json_lines(tmp_path / "no_image.jsonl", [{k: v for k, v in good.items() if k != "Flikr30kID"}])
    with pytest.raises(ValueError, match="line 1: no 'Flikr30kID' key"):
        load_snli_ve(no_image, tmp_path)
    with pytest.raises(FileNotFoundError, match="SNLI-VE file not found: .*snli_ve_dev.jsonl"):
        load_snli_ve(str(tmp_path / "snli_ve_dev.jsonl"), tmp_path)


# ---------------------------------------------------------------------------------------------------- NLVR2


def nlvr2_record(identifier, label, sentence, directory=None):
    record = {"identifier": identifier, "sentence": sentence, "label": label, "synset": "dog", "query": "dogs 3",
              "writer": "12", "left_url": "https://example.org/l.jpg", "right_url": "https://example.org/r.jpg"}
    return record if directory is None else {**record, "directory": directory}


@pytest.fixture
def nlvr2_files(tmp_path):
    root = tmp_path / "nlvr2"
    for name in ("train-10171-0-img0.png", "train-10171-0-img1.png"):
        write_image(root / "train" / "17" / name, (0, 128, 255), "PNG")
    write_image(root / "dev" / "dev-850-0-img0.png", (255, 128, 0), "PNG")  # dev-850-0-img1.png is missing
    train = write_json_lines(tmp_path / "train.json", [
        nlvr2_record("train-10171-0-0", "True", "There are two dogs.", directory=17),
        nlvr2_record("train-10171-0-1", "False", "There are no dogs.", directory=17),
    ])
    dev = write_json_lines(tmp_path / "dev.json", [nlvr2_record("dev-850-0-0", "False", "A cat is in the left image.")])
    return train, dev, root


def test_nlvr2_rows_and_image_paths(nlvr2_files):
    train, dev, root = nlvr2_files
    dataset = load_nlvr2([train, dev], root)
    assert dataset.features == NLVR2_FEATURES
    assert dataset["label"] == [1, 0, 0]
    assert dataset[0] == {"identifier": "train-10171-0-0",
                          "images": [os.path.join(root, "train", "17", "train-10171-0-img0.png"),
                                     os.path.join(root, "train", "17", "train-10171-0-img1.png")],
                          "sentence": "There are two dogs.", "label": 1}
    assert all(os.path.isfile(path) for path in dataset[0]["images"])
    assert dataset[2]["images"] == [os.path.join(root, "dev", "dev-850-0-img0.png"),
                                    os.path.join(root, "dev", "dev-850-0-img1.png")]
    assert not os.path.exists(dataset[2]["images"][1])  # missing image: the loader does not look
    assert nlvr2_image_paths("test1-0-1-0", root) == [os.path.join(root, "test1", "test1-0-1-img0.png"),
                                                      os.path.join(root, "test1", "test1-0-1-img1.png")]


def test_nlvr2_streaming_and_authors_archive_layout(nlvr2_files, tmp_path):
    train, dev, root = nlvr2_files
    streamed = load_nlvr2([train, dev], root, streaming=True)
    assert streamed.n_shards == 2 and streamed.features == NLVR2_FEATURES
    assert list(streamed) == list(load_nlvr2([train, dev], root))
    archive_root = tmp_path / "unpacked"
    write_image(archive_root / "images" / "train" / "17" / "train-10171-0-img0.png", (1, 2, 3), "PNG")
    assert load_nlvr2(train, archive_root)[0]["images"][0] == os.path.join(
        archive_root, "images", "train", "17", "train-10171-0-img0.png")


def test_nlvr2_errors(tmp_path):
    records = [nlvr2_record("dev-1-0-0", "True", "s"), nlvr2_record("dev-1-0-1", "maybe", "s")]
    path = write_json_lines(tmp_path / "dev.json", records)
    with pytest.raises(ValueError, match=r"dev.json, line 2: unknown label 'maybe'"):
        load_nlvr2(path, tmp_path)
    path = write_json_lines(tmp_path / "train.json", [nlvr2_record("train-1-0-0", "True", "s")])
    with pytest.raises(ValueError, match=r"train.json, line 1: .*has no 'directory'"):
        load_nlvr2(path, tmp_path, streaming=True)
    path = write_json_lines(tmp_path / "odd.json", [nlvr2_record("valid-1-0", "True", "s")])
    with pytest.raises(ValueError, match="identifier 'valid-1-0' is not 'split-set_id-pair_id-sentence_id'"):
        load_nlvr2(path, tmp_path)
    broken = tmp_path / "test1.json"
    broken.write_text("[" + json.dumps(nlvr2_record("test1-1-0-0", "True", "s")) + "]\n")
    with pytest.raises(ValueError, match="test1.json, line 1: a JSON list, not an object"):
        load_nlvr2(str(broken), tmp_path)


# ---------------------------------------------------------------------------------------------------- Hub


def png_bytes(color):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(image_value):
    return datasets.Image().decode_example(image_value)


def test_hub_vqa_with_the_hub_column_names(tmp_path):
    """A local copy with HuggingFaceM4/VQAv2's (= lmms-lab/VQAv2's) columns, images stored as bytes."""
    features = datasets.Features({
        "question_type": datasets.Value("string"), "multiple_choice_answer": datasets.Value("string"),
        "answers": datasets.List({"answer": datasets.Value("string"), "answer_confidence": datasets.Value("string"),
                                  "answer_id": datasets.Value("int64")}),
        "image_id": datasets.Value("int64"), "answer_type": datasets.Value("string"),
        "question_id": datasets.Value("int64"), "question": datasets.Value("string"), "image": datasets.Image(),
    })
    hub_rows = {
        "question_type": ["what color is the", "how many"], "multiple_choice_answer": ["red", "2"],
        "answers": [human_answers("red", "Red", *["maroon"] * 8), human_answers(*["two"] * 10)],
        "image_id": [9, 42], "answer_type": ["other", "number"], "question_id": [9002, 42001],
        "question": ["What color is the ball?", "How many?"],
        "image": [{"bytes": png_bytes((255, 0, 0)), "path": None}, {"bytes": png_bytes((0, 0, 255)), "path": None}],
    }
    folder = tmp_path / "VQAv2"
    table = datasets.Dataset.from_dict(hub_rows, features=features)
    datasets.DatasetDict({"validation": table}).save_to_disk(str(folder))
    dataset = load_hub_dataset(folder, "vqa", "validation", answer_vocabulary=["yes", "2", "red"])
    assert dataset.features == HUB_TASK_FEATURES["vqa"]
    first, second = dataset[0], dataset[1]
    assert (first["question_id"], first["image_id"], first["question"]) == (9002, 9, "What color is the ball?")
    assert first["answers"][:2] == ["red", "Red"] and len(first["answers"]) == 10
    assert first["labels"] == [2] and first["scores"] == pytest.approx([2 / 3])
    assert (second["labels"], second["scores"]) == ([1], [1.0])
    assert set(first["image"]) == {"bytes", "path"}
    assert decoded(first["image"]).getpixel((0, 0)) == (255, 0, 0)


def test_hub_flickr30k_filters_the_karpathy_split_column(tmp_path):
    """nlphuji/flickr30k keeps all images in one Hub split "test" and names the Karpathy split in a column."""
    paths = [write_image(tmp_path / "img" / f"{i}.jpg", (i * 80, 0, 0), "JPEG") for i in range(3)]
    hub_rows = {"image": paths, "caption": [["c0 a", "c0 b"], ["c1 a"], ["c2 a"]],
                "sentids": [["0", "1"], ["2"], ["3"]], "split": ["train", "test", "val"], "img_id": ["0", "1", "2"],
                "filename": ["0.jpg", "1.jpg", "2.jpg"]}
    table = datasets.Dataset.from_dict(hub_rows).cast_column("image", datasets.Image())
    folder = tmp_path / "flickr30k"
    datasets.DatasetDict({"test": table}).save_to_disk(str(folder))
    mapping = HUB_DATASETS["nlphuji/flickr30k"]
    test = load_hub_dataset(folder, "retrieval", "test", column_mapping=mapping)
    assert test.features == HUB_TASK_FEATURES["retrieval"]
    assert len(test) == 1 and test[0]["image_id"] == 1 and test[0]["captions"] == ["c1 a"]
    assert decoded(test[0]["image"]).size == (8, 8)
    parquet = tmp_path / "flickr30k.parquet"
    table.to_parquet(str(parquet))
    streamed = load_hub_dataset(parquet, "retrieval", "train", streaming=True, column_mapping=mapping)
    assert isinstance(streamed, datasets.IterableDataset) and streamed.features == HUB_TASK_FEATURES["retrieval"]
    rows = list(streamed)
    assert [(row["image_id"], row["captions"]) for row in rows] == [(0, ["c0 a", "c0 b"])]
    assert decoded(rows[0]["image"]).getpixel((0, 0))[1] < 30  # a real (red) JPEG


def test_hub_snli_ve_class_labels_streaming(tmp_path):
    """HuggingFaceM4/SNLI-VE's columns, its label a ClassLabel."""
    image = write_image(tmp_path / "3416050480.jpg", (0, 255, 0), "JPEG")
    features = datasets.Features({"image": datasets.Image(), "filename": datasets.Value("string"),
                                  "premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(ENTAILMENT_LABELS))})
    table = datasets.Dataset.from_dict({"image": [image, image], "filename": ["3416050480.jpg"] * 2,
                                        "premise": ["Dogs play."] * 2, "hypothesis": ["Animals play.", "Cats sleep."],
                                        "label": [0, 2]}, features=features)
    folder = tmp_path / "SNLI-VE"
    table.save_to_disk(str(folder))
    streamed = load_hub_dataset(folder, "entailment", "validation", streaming=True)
    assert streamed.features == HUB_TASK_FEATURES["entailment"]
    rows = list(streamed)
    assert [(row["pair_id"], row["hypothesis"], row["label"]) for row in rows] == [
        ("0", "Animals play.", 0), ("1", "Cats sleep.", 2)]
    assert decoded(rows[0]["image"]).getpixel((0, 0))[1] > 200  # the green JPEG


def test_hub_nlvr2_pairs_two_image_columns(tmp_path):
    left = write_image(tmp_path / "dev-850-0-img0.png", (255, 255, 0), "PNG")
    right = write_image(tmp_path / "dev-850-0-img1.png", (0, 255, 255), "PNG")
    table = datasets.Dataset.from_dict({"identifier": ["dev-850-0-0", "dev-850-0-1"], "sentence": ["s0", "s1"],
                                        "left_image": [left, left], "right_image": [right, right],
                                        "label": ["True", "False"]})
    table = table.cast_column("left_image", datasets.Image()).cast_column("right_image", datasets.Image())
    parquet = tmp_path / "nlvr2.parquet"
    table.to_parquet(str(parquet))
    dataset = load_hub_dataset(parquet, "nlvr2", "validation", cache_dir=str(tmp_path / "cache"))
    assert dataset.features == HUB_TASK_FEATURES["nlvr2"]
    assert dataset["label"] == [1, 0] and dataset["identifier"] == ["dev-850-0-0", "dev-850-0-1"]
    assert [decoded(image).getpixel((0, 0)) for image in dataset[0]["images"]] == [(255, 255, 0), (0, 255, 255)]


def test_hub_coco_karpathy_builds_image_paths(tmp_path):
    """yerevann/coco-karpathy has no image data: the image is image_root/filepath/filename, else its COCO URL."""
    url = "http://images.cocodataset.org/val2014/COCO_val2014_000000000074.jpg"
    table = datasets.Dataset.from_dict({
        "filepath": ["val2014"], "sentids": [[0, 1]], "filename": ["COCO_val2014_000000000074.jpg"], "imgid": [3],
        "split": ["test"], "sentences": [["Two cats sleep.", "Cats on a bed."]], "cocoid": [74], "url": [url]})
    parquet = tmp_path / "coco_karpathy_test.parquet"
    table.to_parquet(str(parquet))
    mapping = HUB_DATASETS["yerevann/coco-karpathy"]
    image_root = tmp_path / "coco"
    image = write_image(image_root / "val2014" / "COCO_val2014_000000000074.jpg", (9, 9, 9), "JPEG")
    rows = list(load_hub_dataset(parquet, "retrieval", "test", True, column_mapping=mapping, image_root=image_root))
    assert rows == [{"image_id": 74, "image": {"bytes": None, "path": image},
                     "captions": ["Two cats sleep.", "Cats on a bed."]}]
    assert decoded(rows[0]["image"]).size == (8, 8)
    rows = list(load_hub_dataset(parquet, "retrieval", "test", True, column_mapping=mapping))
    assert rows[0]["image"] == {"bytes": None, "path": url}


def test_hub_missing_columns_are_named(tmp_path):
    folder = tmp_path / "no_question"
    datasets.Dataset.from_dict({"question_id": [1], "image": ["a.jpg"], "answers": [[]]}).save_to_disk(str(folder))
    columns = r"its columns are \['question_id', 'image', 'answers'\]"
    with pytest.raises(ValueError, match=r"as HuggingFaceM4/VQAv2 it lacks \['question'\].*" + columns):
        load_hub_dataset(folder, "vqa", "train")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['question'\] that the 'vqa' task needs"):
        load_hub_dataset(folder, "vqa", "train", column_mapping=HUB_DATASETS["HuggingFaceM4/VQAv2"])
    with pytest.raises(ValueError, match="HuggingFaceM4/NLVR2 is a 'nlvr2' dataset"):
        load_hub_dataset("HuggingFaceM4/NLVR2", "vqa", "train")
    with pytest.raises(ValueError, match="task must be one of"):
        load_hub_dataset(folder, "captioning", "train")
