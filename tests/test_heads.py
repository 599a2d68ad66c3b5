"""The task heads: shapes, losses, label checks, zero-shot pipeline."""

import pytest
import torch

from conftest import make_batch, tiny_config
from modeling_ashnets import (
    ENTAILMENT_LABELS,
    AshNetsForEntailment,
    AshNetsForImagesAndTextClassification,
    AshNetsForQuestionAnswering,
    AshNetsForRetrieval,
)
from modeling_ashnets.losses import caption_keys, positive_pairs


@pytest.fixture
def texts_and_images(processor, easy_vqa_samples):
    return make_batch(processor, easy_vqa_samples)


def test_entailment_head_names_its_classes_and_checks_labels(texts_and_images):
    torch.manual_seed(0)
    model = AshNetsForEntailment(tiny_config())
    assert model.config.id2label == dict(enumerate(ENTAILMENT_LABELS))
    outputs = model(**texts_and_images, labels=torch.tensor([0, 1, 2, 0]))
    assert outputs.logits.shape == (4, 3)
    expected = torch.nn.functional.cross_entropy(outputs.logits, torch.tensor([0, 1, 2, 0]))
    assert torch.allclose(outputs.loss, expected)
    assert outputs.snn_firing_rates.shape == (4, 2)
    expected = r"expected class ids in \[0, 3\) as an integer tensor of shape \(4,\)"
    for labels, error, message in [
        (torch.tensor([0, 1, 3, 0]), ValueError, "labels hold class ids from 0 to 3; " + expected),
        (torch.tensor([0.0, 1.0, 2.0, 0.0]), TypeError, "labels must be integer class ids, got torch.float32; " + expected),
        (torch.tensor([0, 1]), ValueError, r"labels have shape \(2,\); " + expected),
        ([0, 1, 2, 0], TypeError, "labels must be a torch.Tensor, got list; " + expected),
        ("entailment", TypeError, "labels must be a torch.Tensor, got str; " + expected),
    ]:
        with pytest.raises(error, match=message):  # a fresh model: values are checked until one call passed them
            AshNetsForEntailment(tiny_config())(**texts_and_images, labels=labels)
    with pytest.raises(ValueError, match="3 classes"):
        AshNetsForEntailment(tiny_config(id2label={0: "a", 1: "b"}))


def test_nlvr2_head_fuses_each_image_of_a_pair(processor, easy_vqa_samples):
    torch.manual_seed(0)
    model = AshNetsForImagesAndTextClassification(tiny_config()).eval()
    pairs = [[easy_vqa_samples[0][0], easy_vqa_samples[1][0]], [easy_vqa_samples[2][0], easy_vqa_samples[3][0]]]
    inputs = processor(images=pairs, text=["both images contain a circle", "the left image contains a red shape"],
                       return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 2, 3, 64, 64)
    with torch.no_grad():
        outputs = model(**inputs, labels=torch.tensor([1, 0]))
        swapped = model(**{**inputs, "pixel_values": inputs["pixel_values"].flip(1)})
    assert outputs.logits.shape == (2, 2) and torch.isfinite(outputs.loss)
    assert not torch.allclose(outputs.logits, swapped.logits)  # left and right are not interchangeable
    # Each half of the classifier input is the pooled state of one (text, image) pass.
    with torch.no_grad():
        left = model.ashnets(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                             pixel_values=inputs["pixel_values"][:, 0]).pooler_output
        right = model.ashnets(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                              pixel_values=inputs["pixel_values"][:, 1]).pooler_output
    assert torch.allclose(model.classifier(torch.cat([left, right], -1)), outputs.logits, atol=1e-5)
    # Hidden states and attentions keep batch B: a sample's left pass, then its right pass.
    with torch.no_grad():
        recorded = model(**inputs, output_hidden_states=True, output_attentions=True)
        alone = model.ashnets(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                              pixel_values=inputs["pixel_values"][:, 1], output_hidden_states=True,
                              output_attentions=True)
    length = alone.last_hidden_state.shape[1]
    assert recorded.hidden_states[-1].shape == (2, 2 * length, model.config.hidden_size)
    assert torch.allclose(recorded.hidden_states[-1][:, length:], alone.hidden_states[-1], atol=1e-5)
    assert recorded.attentions[0].shape == (2, model.config.num_attention_heads, 2 * length, length)
    assert torch.allclose(recorded.attentions[0][:, :, length:], alone.attentions[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"\(batch, 2, 3, height, width\), one pair of images per statement"):
        model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"][:, 0])


def test_nlvr2_head_refuses_bad_inputs_before_any_work(processor, easy_vqa_samples):
    model = AshNetsForImagesAndTextClassification(tiny_config()).eval()
    ran = []
    model.ashnets.register_forward_pre_hook(lambda module, args, kwargs: ran.append(1), with_kwargs=True)
    pairs = [[easy_vqa_samples[0][0], easy_vqa_samples[1][0]], [easy_vqa_samples[2][0], easy_vqa_samples[3][0]]]
    inputs = processor(images=pairs, text=["both images contain a circle", "the left image contains a red shape"],
                       return_tensors="pt")
    ids, pixels = inputs["input_ids"], inputs["pixel_values"]
    for bad, error, message in [
        ({"input_ids": ids[:0], "pixel_values": pixels[:0]}, ValueError, r"input_ids holds an empty batch \(batch size 0\)"),
        ({"pixel_values": (pixels * 255).to(torch.uint8)}, TypeError, "pixel_values must be a floating-point tensor"),
        ({"pixel_values": pixels[:, :, :1]}, ValueError, "pixel_values must have 3 channels .* got 1 channels"),
        ({"input_ids": ids.float()}, TypeError, "input_ids must hold integer token ids"),
        ({"labels": [1, 0]}, TypeError, r"labels must be a torch.Tensor, got list; expected class ids in \[0, 2\)"),
        ({"labels": torch.tensor([1, 2])}, ValueError, r"labels hold class ids from 1 to 2; expected class ids in \[0, 2\)"),
    ]:
        with pytest.raises(error, match=message):
            model(**{**inputs, **bad})
    assert ran == []


def test_retrieval_head_similarities_and_losses(processor, easy_vqa_samples):
    torch.manual_seed(0)
    model = AshNetsForRetrieval(tiny_config())
    captions = ["a red circle", "a blue square", "a red circle", "a green triangle"]
    inputs = processor(images=[s[0] for s in easy_vqa_samples], text=captions, return_tensors="pt")
    outputs = model(**inputs, return_loss=True)
    assert outputs.logits_per_image.shape == (4, 4)
    assert torch.allclose(outputs.logits_per_text, outputs.logits_per_image.t())
    scale = model.logit_scale.exp()
    assert torch.allclose(outputs.logits_per_image, scale * outputs.image_embeds @ outputs.text_embeds.t(), atol=1e-5)
    assert outputs.itm_logits.shape == (12, 2) and torch.isfinite(outputs.loss)
    outputs.loss.backward()
    assert model.itm_head.weight.grad.abs().sum() > 0 and model.logit_scale.grad is not None
    # Identical captions (0 and 2) are positives of each other: never sampled as hard negatives.
    positives = positive_pairs(caption_keys(inputs["input_ids"], inputs["attention_mask"]))
    assert positives[0, 2] and positives[2, 0] and not positives[0, 1]
    # Any numbers of texts and images without a loss; a loss needs pairs.
    one_image = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                      pixel_values=inputs["pixel_values"][:1])
    assert one_image.logits_per_image.shape == (1, 4)
    with pytest.raises(ValueError, match="matched pairs"):
        model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"][:2], return_loss=True)
    # As CLIP's output, each tower's hidden states and attentions are in its own output.
    towers = model(**inputs, output_hidden_states=True, output_attentions=True)
    text_length, config = inputs["input_ids"].shape[1], model.config
    assert len(towers.text_model_output.hidden_states) == config.num_hidden_layers + 1
    assert towers.text_model_output.hidden_states[-1].shape == (4, text_length, config.hidden_size)
    assert towers.vision_model_output.attentions[0].shape == (4, config.num_attention_heads, 4, 4)
    assert towers.text_model_output.text_embeds is towers.text_embeds


def test_zero_shot_pipeline_runs_on_the_retrieval_head(tmp_path, processor, easy_vqa_samples):
    from transformers import pipeline

    torch.manual_seed(0)
    model = AshNetsForRetrieval(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    classifier = pipeline("zero-shot-image-classification", model=str(tmp_path), image_processor=processor.image_processor,
                          tokenizer=processor.tokenizer)
    labels = ["circle", "rectangle", "triangle"]
    results = classifier(easy_vqa_samples[0][0], candidate_labels=labels)
    assert sorted(r["label"] for r in results) == labels
    assert sum(r["score"] for r in results) == pytest.approx(1.0, abs=1e-4)
    # The same scores as the head's own logits_per_image.
    texts = processor(text=[f"This is a photo of {label}." for label in labels], return_tensors="pt")
    pixels = processor(images=[easy_vqa_samples[0][0]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = model(**texts, pixel_values=pixels).logits_per_image.softmax(-1)[0]
    by_label = {r["label"]: r["score"] for r in results}
    assert [by_label[label] for label in labels] == pytest.approx(expected.tolist(), abs=1e-4)


@pytest.mark.parametrize("options", [{}, {"use_summary_ratio": False}, {"use_snn": False, "stua_weight": 0.0},
                                     {"contrastive_summary": "layer_norm"}])
@pytest.mark.parametrize("head", [AshNetsForQuestionAnswering, AshNetsForRetrieval])
def test_every_parameter_gets_a_gradient(head, options, texts_and_images):
    """Multi-process training relies on it: DDP looks for unused parameters in pre-training only."""
    torch.manual_seed(0)
    model = head(tiny_config(**options, id2label={0: "no", 1: "yes"}))
    if head is AshNetsForRetrieval:
        model(**texts_and_images, return_loss=True).loss.backward()
    else:
        model(**texts_and_images, labels=torch.tensor([0, 1, 1, 0])).loss.backward()
    unused = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert unused == []


def test_fused_heads_have_no_contrastive_projections(texts_and_images):
    model = AshNetsForQuestionAnswering(tiny_config())
    assert model.ashnets.text_projection is None and model.ashnets.visual_projection is None
    with pytest.raises(ValueError, match="fused task head .* no contrastive projections"):
        model.ashnets.get_text_features(texts_and_images["input_ids"])
