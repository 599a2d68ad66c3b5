"""Pipelines for ASH-Nets checkpoints: visual question answering (transformers 5 removed its built-in task) and
image-text retrieval ranking. Zero-shot image classification and feature extraction use transformers' own
pipelines (`zero-shot-image-classification` on the retrieval head, `image-feature-extraction` / `feature-extraction`
on `AutoModel`).

Images may be paths, http(s) URLs, base64 strings, data URIs, encoded bytes or PIL images. Exported checkpoints carry
this file and name it in `config.custom_pipelines`, so `pipeline(model=repo, trust_remote_code=True)` finds it.
"""

import torch
from transformers import Pipeline

from .image_inputs import load_image_reference


__all__ = ["AshNetsImageTextRetrievalPipeline", "AshNetsVisualQuestionAnsweringPipeline"]


class AshNetsVisualQuestionAnsweringPipeline(Pipeline):
    """`vqa(image, question)` or `vqa({"image": ..., "question": ...})` -> the `top_k` answers with their scores
    (sigmoid of the VQA head's logits, as the head is trained with BCE on soft scores)."""

    _load_processor = True
    _load_image_processor = False
    _load_tokenizer = False
    _load_feature_extractor = False

    def __call__(self, image, question: str | None = None, **kwargs):
        if isinstance(image, dict):
            return super().__call__(image, **kwargs)
        if isinstance(image, list):
            return super().__call__([item if isinstance(item, dict) else {"image": item, "question": question}
                                     for item in image], **kwargs)
        return super().__call__({"image": image, "question": question}, **kwargs)

    def _sanitize_parameters(self, top_k=None, **kwargs):
        postprocess = {}
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
            postprocess["top_k"] = top_k
        return {}, {}, postprocess

    def preprocess(self, inputs: dict):
        question = inputs.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("Visual question answering needs a non-empty `question` string with the image.")
        if inputs.get("image") is None:
            raise ValueError("Visual question answering needs an `image` (path, URL, base64, bytes or PIL image).")
        image = load_image_reference(inputs["image"])
        return self.processor(images=image, text=question, return_tensors="pt")

    def _forward(self, model_inputs):
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs, top_k: int = 5):
        scores = model_outputs["logits"][0].float().sigmoid()
        top_k = min(top_k, scores.shape[-1])
        values, indices = scores.topk(top_k)
        labels = self.model.config.id2label
        return [{"answer": labels[int(i)], "score": float(v)} for v, i in zip(values, indices)]


class AshNetsImageTextRetrievalPipeline(Pipeline):
    """`retrieve(images=[...], texts=[...])` -> every image's texts and every text's images, best first, scored by
    the retrieval head's ITC similarity (`logits_per_image`). One call scores all pairs in one batch."""

    _load_processor = True
    _load_image_processor = False
    _load_tokenizer = False
    _load_feature_extractor = False

    def __call__(self, images=None, texts=None, **kwargs):
        if isinstance(images, dict):
            images, texts = images.get("images"), images.get("texts")
        images = images if isinstance(images, (list, tuple)) else [images]
        texts = [texts] if isinstance(texts, str) else texts
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts) or any(i is None for i in images):
            raise ValueError("Image-text retrieval needs `images` (one or a list) and `texts` (non-empty strings).")
        return super().__call__({"images": list(images), "texts": list(texts)}, **kwargs)

    def _sanitize_parameters(self, top_k=None, **kwargs):
        return {}, {}, ({"top_k": top_k} if top_k is not None else {})

    def preprocess(self, inputs: dict):
        images = [load_image_reference(image) for image in inputs["images"]]
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        text = self.processor(text=inputs["texts"], return_tensors="pt")
        return {"pixel_values": pixels, **text, "texts": inputs["texts"]}

    def _forward(self, model_inputs):
        texts = model_inputs.pop("texts")
        outputs = self.model(**model_inputs)
        return {"logits_per_image": outputs.logits_per_image, "texts": texts}

    def postprocess(self, model_outputs, top_k: int | None = None):
        logits = model_outputs["logits_per_image"].float()
        texts = model_outputs["texts"]
        k_texts = min(top_k or logits.shape[1], logits.shape[1])
        k_images = min(top_k or logits.shape[0], logits.shape[0])

        def ranked(row: torch.Tensor, k: int, describe) -> list[dict]:
            values, indices = row.topk(k)
            return [{**describe(int(i)), "score": float(v)} for v, i in zip(values, indices)]

        return {
            "logits_per_image": logits.tolist(),
            "image_to_text": [ranked(row, k_texts, lambda i: {"text": texts[i]}) for row in logits],
            "text_to_image": [ranked(row, k_images, lambda i: {"image": i}) for row in logits.t()],
        }
