"""VQA v2 from its official files (https://visualqa.org/download.html) as 🤗 Datasets, one row per question.

Why: the release is two JSON documents per split that must be joined on `question_id`, plus COCO images named by
`image_id`. Training needs a fixed answer vocabulary and soft scores; evaluation needs the raw ten human answers.
This module does the join once and yields both.

Official format:

* questions, `v2_OpenEnded_mscoco_{train2014,val2014,test2015,test-dev2015}_questions.json`:
  `{"info", "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "train2014", "license",
  "questions": [{"image_id", "question", "question_id"}, ...]}`
* annotations (train and val only), `v2_mscoco_{train2014,val2014}_annotations.json`:
  `{"info", "license", "data_type", "data_subtype", "annotations": [{"question_id", "image_id", "question_type",
  "answer_type", "multiple_choice_answer", "answers": [{"answer", "answer_confidence", "answer_id"}] (10 of them)}]}`
* images: `{image_dir}/COCO_{data_subtype}_{image_id:012d}.jpg`. The test-dev2015 questions use the test2015
  images (COCO's convention), so their names start with `COCO_test2015_`.

Images are not opened here: rows hold the path, and the collator decodes it (and counts missing files).
"""

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import partial

import datasets

from ..metrics import normalize_vqa_answer
from ._files import PathLike, as_path_list, build_dataset, read_json_document, require_file, require_list_of_records


__all__ = ["VQA_V2_FEATURES", "build_answer_vocabulary", "load_vqa_v2", "vqa_labels_and_scores", "vqa_soft_score"]

VQA_V2_FEATURES = datasets.Features(
    {
        "question_id": datasets.Value("int64"),
        "image_id": datasets.Value("int64"),
        "image": datasets.Value("string"),
        "question": datasets.Value("string"),
        "question_type": datasets.Value("string"),
        "answer_type": datasets.Value("string"),
        "answers": datasets.List(datasets.Value("string")),
        "labels": datasets.List(datasets.Value("int32")),
        "scores": datasets.List(datasets.Value("float32")),
    }
)

DEFAULT_IMAGE_NAME_FORMAT = "COCO_{data_subtype}_{image_id:012d}.jpg"
_IMAGE_SUBTYPE = {"test-dev2015": "test2015"}  # test-dev questions are about test2015 images

_QUESTIONS_FORMAT = (
    'VQA v2 questions file (v2_OpenEnded_mscoco_*_questions.json): {"data_subtype": "train2014", '
    '"questions": [{"image_id", "question", "question_id"}, ...], ...}'
)
_ANNOTATIONS_FORMAT = (
    'VQA v2 annotations file (v2_mscoco_*_annotations.json): {"annotations": [{"question_id", "question_type", '
    '"answer_type", "multiple_choice_answer", "answers": [{"answer", "answer_confidence", "answer_id"}, ...]}, ...]}'
)


def vqa_soft_score(count: int) -> float:
    """Training target of an answer given by `count` of the annotators: min(count / 3, 1).

    It is the official metric's credit for that answer (before its leave-one-annotator-out averaging). Note that
    ViLT, LXMERT and MMF's `get_score` use the steps 0.3 / 0.6 / 0.9 / 1.0 for 1 / 2 / 3 / 4+ annotators instead."""
    return min(count / 3.0, 1.0)


def build_answer_vocabulary(annotation_files: PathLike | Sequence[PathLike], top_k: int = 3129) -> list[str]:
    """The `top_k` most frequent normalised `multiple_choice_answer`s of the annotation files (3,129 is the
    usual VQA v2 vocabulary size), most frequent first; equal counts are ordered by the answer string."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
    counts = Counter()
    for path in as_path_list(annotation_files, "annotation_files"):
        for annotation in _read_annotations(path):
            answer = normalize_vqa_answer(str(annotation["multiple_choice_answer"]))
            if answer:
                counts[answer] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [answer for answer, _ in ranked[:top_k]]


def load_vqa_v2(
    questions_file: PathLike | Sequence[PathLike],
    image_dir: PathLike | Sequence[PathLike],
    annotations_file: PathLike | Sequence[PathLike] | None = None,
    answer_vocabulary: Sequence[str] | None = None,
    streaming: bool = False,
    max_samples: int | None = None,
    image_name_format: str = DEFAULT_IMAGE_NAME_FORMAT,
    validate: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """VQA v2 questions joined with their annotations, one row per question (columns: `VQA_V2_FEATURES`).

    `questions_file` may be a list (e.g. train and val); `annotations_file` and `image_dir` are then lists of the
    same length (or one `image_dir` for all). Without annotations (test splits) `answers`, `labels`, `scores`
    are empty and `question_type`, `answer_type` are "". `labels` are the ids in `answer_vocabulary` of the
    normalised human answers found in it, `scores` their `vqa_soft_score`; answers outside the vocabulary are
    left out of `labels` only (the question and its raw `answers` stay, so evaluation still counts it).
    Without `answer_vocabulary`, `labels` and `scores` are empty. `image_name_format` is formatted with
    `data_subtype` and `image_id` (use "{image_id:012d}.jpg" for COCO 2017 folders).

    With `streaming=True` the result is an `IterableDataset` with one shard per questions file. Bad files raise
    before this returns; for streaming that costs one pass over the files, which `validate=False` skips (errors
    then come up during iteration, with the same messages)."""
    questions_files = as_path_list(questions_file, "questions_file")
    if annotations_file is None:
        annotations_files = [None] * len(questions_files)
    else:
        annotations_files = as_path_list(annotations_file, "annotations_file")
    image_dirs = as_path_list(image_dir, "image_dir")
    if len(image_dirs) == 1:
        image_dirs = image_dirs * len(questions_files)
    if not len(questions_files) == len(annotations_files) == len(image_dirs):
        raise ValueError(
            f"Got {len(questions_files)} questions file(s), {len(annotations_files)} annotations file(s) and "
            f"{len(image_dirs)} image folder(s); pass one annotations file (and one image folder, or a single "
            "folder for all) per questions file, in the same order."
        )
    for path in questions_files:
        require_file(path, "VQA v2 questions file", "Download it from https://visualqa.org/download.html.")
    for path in annotations_files:
        if path is not None:
            require_file(path, "VQA v2 annotations file", "Download it from https://visualqa.org/download.html.")
    generate_rows = partial(
        _generate_vqa_rows, answer_vocabulary=tuple(answer_vocabulary or ()), image_name_format=image_name_format
    )
    shards = list(zip(questions_files, annotations_files, image_dirs))
    return build_dataset(
        generate_rows, VQA_V2_FEATURES, shards, streaming=streaming, max_samples=max_samples, validate=validate
    )


def _generate_vqa_rows(
    shards: Sequence[tuple[PathLike, PathLike | None, PathLike]],
    answer_vocabulary: tuple[str, ...],
    image_name_format: str,
) -> Iterator[dict]:
    """Rows of each (questions file, annotations file or None, image folder) in turn."""
    answer_ids = {answer: index for index, answer in enumerate(answer_vocabulary)}
    for questions_file, annotations_file, image_dir in shards:
        data_subtype, questions = _read_questions(questions_file)
        annotations = _annotations_by_question(questions_file, questions, annotations_file)
        if "{data_subtype" in image_name_format and data_subtype is None:
            raise ValueError(
                f"{questions_file} has no 'data_subtype' key, which the image file names "
                f"{image_name_format!r} need; pass image_name_format without it, e.g. '{{image_id:012d}}.jpg'."
            )
        image_subtype = _IMAGE_SUBTYPE.get(data_subtype, data_subtype)
        for question in questions:
            image_id = int(question["image_id"])
            annotation = annotations.get(question["question_id"])
            human_answers = [] if annotation is None else _human_answers(annotation, annotations_file)
            labels, scores = vqa_labels_and_scores(human_answers, answer_ids)
            image_name = image_name_format.format(data_subtype=image_subtype, image_id=image_id)
            yield {
                "question_id": int(question["question_id"]),
                "image_id": image_id,
                "image": os.path.join(image_dir, image_name),
                "question": str(question["question"]),
                "question_type": "" if annotation is None else str(annotation.get("question_type", "")),
                "answer_type": "" if annotation is None else str(annotation.get("answer_type", "")),
                "answers": human_answers,
                "labels": labels,
                "scores": scores,
            }


def _read_questions(path: PathLike) -> tuple[str | None, list[dict]]:
    document = read_json_document(path, required_keys=("questions",), expected_format=_QUESTIONS_FORMAT)
    questions = require_list_of_records(
        document["questions"], path, "questions", ("image_id", "question", "question_id"), _QUESTIONS_FORMAT
    )
    return document.get("data_subtype"), questions


def _read_annotations(path: PathLike) -> list[dict]:
    require_file(path, "VQA v2 annotations file", "Download it from https://visualqa.org/download.html.")
    document = read_json_document(path, required_keys=("annotations",), expected_format=_ANNOTATIONS_FORMAT)
    return require_list_of_records(
        document["annotations"], path, "annotations", ("question_id", "multiple_choice_answer", "answers"),
        _ANNOTATIONS_FORMAT,
    )


def _annotations_by_question(
    questions_file: PathLike, questions: list[dict], annotations_file: PathLike | None
) -> dict:
    """question_id -> annotation; every question must have one when an annotations file is given."""
    if annotations_file is None:
        return {}
    annotations = {annotation["question_id"]: annotation for annotation in _read_annotations(annotations_file)}
    missing = [question["question_id"] for question in questions if question["question_id"] not in annotations]
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(questions)} question_ids of {questions_file} have no annotation in "
            f"{annotations_file} (first: {missing[:5]}). The two files must be of the same split, e.g. "
            "v2_OpenEnded_mscoco_val2014_questions.json with v2_mscoco_val2014_annotations.json."
        )
    return annotations


def _human_answers(annotation: dict, annotations_file: PathLike) -> list[str]:
    try:
        return [str(answer["answer"]) for answer in annotation["answers"]]
    except (KeyError, TypeError):
        raise ValueError(
            f"{annotations_file}: question_id {annotation['question_id']} has malformed 'answers' "
            f"{annotation['answers']!r}; expected a list of {{'answer', 'answer_confidence', 'answer_id'}}."
        ) from None


def vqa_labels_and_scores(human_answers: list[str], answer_ids: dict[str, int]) -> tuple[list[int], list[float]]:
    """Vocabulary ids of the normalised answers that are in the vocabulary, in id order, with soft scores."""
    counts = Counter(normalize_vqa_answer(answer) for answer in human_answers)
    pairs = sorted(
        (answer_ids[answer], vqa_soft_score(count)) for answer, count in counts.items() if answer in answer_ids
    )
    return [label for label, _ in pairs], [score for _, score in pairs]
