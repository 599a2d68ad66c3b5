"""AshNetsForPreTraining: every objective finite, switchable, and decreasing over a few steps on a tiny config."""

import pytest
import torch

from conftest import tiny_config
from modeling_ashnets import AshNetsForPreTraining, AshNetsForRetrieval
from modeling_ashnets.losses import mask_tokens_for_mlm


@pytest.fixture
def captioned_batch(processor, easy_vqa_samples):
    captions = ["a red triangle", "a blue circle", "a green rectangle", "a red triangle"]
    return processor(images=[s[0] for s in easy_vqa_samples], text=captions, return_tensors="pt")


def test_every_objective_is_returned_and_finite(captioned_batch):
    torch.manual_seed(0)
    model = AshNetsForPreTraining(tiny_config(mvm_probability=0.5))  # 16 visual tokens: make sure some are masked
    outputs = model(**captioned_batch)
    for name in ("itc_loss", "itm_loss", "mlm_loss", "mvm_loss", "stua_loss"):
        assert torch.isfinite(getattr(outputs, name)), name
    total = outputs.itc_loss + outputs.itm_loss + outputs.mlm_loss + outputs.mvm_loss + outputs.stua_loss
    assert torch.allclose(outputs.loss, total)
    # MLM predicts at round(0.15 x (length - 2)) positions per caption, not over the whole caption.
    predictions = max(1, round(0.15 * (captioned_batch["input_ids"].shape[1] - 2)))
    assert outputs.mlm_logits.shape == (4, predictions, model.config.vocab_size)
    assert outputs.mlm_positions.shape == (4, predictions)
    assert outputs.mvm_logits.shape == (4, model.config.num_visual_tokens, 32)
    outputs.loss.backward()
    assert model.stua_projection.weight.grad.abs().sum() > 0
    assert model.mvm_head.decoder.weight.grad.abs().sum() > 0
    assert model.ashnets.visual_encoder.projection.weight.grad.abs().sum() > 0
    # The decoder is tied to the word embeddings.
    assert model.mlm_head.decoder.weight.data_ptr() == model.ashnets.text_embeddings.word_embeddings.weight.data_ptr()


@pytest.mark.parametrize("head", [AshNetsForPreTraining, AshNetsForRetrieval])
def test_the_cnn_runs_once_per_step_on_the_batch(head, captioned_batch):
    """The image-only, ITM (3x the batch) and MLM/MVM passes share one CNN pass: the CNN is most of a step's work."""
    torch.manual_seed(0)
    model = head(tiny_config())
    images_seen = []
    model.ashnets.visual_encoder.register_forward_hook(lambda module, args, output: images_seen.append(len(args[0])))
    snn_seen = []
    model.ashnets.snn.register_forward_hook(lambda module, args, output: snn_seen.append(len(args[0])))
    kwargs = {"return_loss": True} if head is AshNetsForRetrieval else {}
    model(**captioned_batch, **kwargs).loss.backward()
    batch_size = len(captioned_batch["pixel_values"])
    assert images_seen == [batch_size]
    # The SNN too runs once per image and input mode (pre-training: `repeat` for ITC, `similar` for the fused
    # passes), never on the ITM's 3B pairs, where an image's copies would count as its most similar other images.
    assert snn_seen == ([batch_size, batch_size] if head is AshNetsForPreTraining else [batch_size])


def test_objectives_switch_off_and_stua_leaves_the_text_side_alone(captioned_batch):
    torch.manual_seed(0)
    model = AshNetsForPreTraining(tiny_config(itc_weight=0, itm_weight=0, mlm_weight=0, mvm_weight=0))
    outputs = model(**captioned_batch)
    assert outputs.itc_loss is None and outputs.itm_loss is None and outputs.mlm_loss is None
    assert outputs.mvm_loss is None and not bool(model.visual_dictionary.initialized)
    outputs.loss.backward()
    assert model.ashnets.text_embeddings.word_embeddings.weight.grad is None  # text side detached in STUA
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.ashnets.snn.parameters())
    with pytest.raises(ValueError, match="switched off"):
        AshNetsForPreTraining(
            tiny_config(itc_weight=0, itm_weight=0, mlm_weight=0, mvm_weight=0, stua_weight=0)
        )(**captioned_batch)


def test_losses_decrease_over_a_few_steps(captioned_batch):
    torch.manual_seed(0)
    model = AshNetsForPreTraining(tiny_config(mvm_probability=0.5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    special = torch.zeros_like(captioned_batch["input_ids"], dtype=torch.bool)
    special[:, 0] = True
    special |= captioned_batch["input_ids"] == 102
    special |= captioned_batch["attention_mask"] == 0
    masked, labels, _ = mask_tokens_for_mlm(captioned_batch["input_ids"], special, 30522, 103, 0.5, generator)
    first = last = None
    for _ in range(12):
        outputs = model(**captioned_batch, masked_input_ids=masked, mlm_labels=labels)
        losses = {n: getattr(outputs, f"{n}_loss").item() for n in ("itc", "itm", "mlm", "mvm", "stua")}
        first = first or losses
        last = losses
        outputs.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for name in ("itc", "mlm", "mvm", "stua"):
        assert last[name] < first[name], (name, first, last)


def test_bert_masking_recipe():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (64, 64))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    special[32:, 20:] = True  # shorter captions: padding
    masked, labels, positions = mask_tokens_for_mlm(ids, special, 30522, 103, 0.15, generator)
    chosen = labels != -100
    assert not chosen[special].any()
    # BERT's own count: round(0.15 x n) of the n maskable tokens, at least one, per caption.
    assert chosen[:32].sum(dim=1).eq(round(0.15 * 63)).all() and chosen[32:].sum(dim=1).eq(round(0.15 * 19)).all()
    assert positions.shape == (64, round(0.15 * 62))
    assert chosen.gather(1, positions).sum() == chosen.sum()  # every chosen token is among the predicted positions
    assert 0.75 < (masked[chosen] == 103).float().mean() < 0.85
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])
    # A caption with nothing maskable gets no prediction.
    _, labels, _ = mask_tokens_for_mlm(ids[:1], torch.ones_like(ids[:1], dtype=torch.bool), 30522, 103)
    assert (labels == -100).all()


def test_visual_dictionary_follows_the_features_and_passes_gradients_straight_through():
    from modeling_ashnets.visual_dictionary import AshNetsVisualDictionary

    torch.manual_seed(0)
    dictionary = AshNetsVisualDictionary(size=8, dim=2, decay=0.5)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    features = (centres.repeat(8, 1) + 0.1 * torch.randn(32, 2)).reshape(4, 8, 2).requires_grad_()
    for _ in range(40):
        quantised, indices = dictionary(features)
    assert bool(dictionary.initialized)
    # Every token ends up next to its entry: the dictionary's entries moved to the clusters the tokens form.
    assert (quantised - features).norm(dim=-1).max() < 1.0
    assert torch.allclose(quantised, dictionary.embeddings[indices], atol=1e-5)
    # An entry nobody chooses any more is moved back among the tokens.
    with torch.no_grad():
        dictionary.embeddings[0] = dictionary.embedding_sum[0] = torch.tensor([1e3, 1e3])
        dictionary.cluster_size[0] = 0.0
        dictionary(features)
    assert dictionary.embeddings[0].norm() < 20
    quantised.sum().backward()
    assert torch.equal(features.grad, torch.ones_like(features))  # straight-through
    dictionary.eval()
    frozen = dictionary.embeddings.clone()
    dictionary(features + 5.0)
    assert torch.equal(dictionary.embeddings, frozen)  # no update outside training
    with pytest.raises(RuntimeError, match="empty"):
        AshNetsVisualDictionary(size=4, dim=2).eval()(features)


def test_save_and_load_keep_the_tied_decoder_the_dictionary_and_the_outputs(tmp_path, captioned_batch):
    torch.manual_seed(0)
    model = AshNetsForPreTraining(tiny_config())
    model(**captioned_batch)  # one training pass fills the visual dictionary
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = AshNetsForPreTraining.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.visual_dictionary.embeddings, model.visual_dictionary.embeddings)
    assert loaded.mlm_head.decoder.weight.data_ptr() == loaded.ashnets.text_embeddings.word_embeddings.weight.data_ptr()
    with torch.no_grad():
        torch.manual_seed(1)
        expected = model(**captioned_batch)
        torch.manual_seed(1)
        actual = loaded(**captioned_batch)
    for name in ("loss", "itc_loss", "itm_loss", "mlm_loss", "mvm_loss", "stua_loss"):
        assert torch.allclose(getattr(expected, name), getattr(actual, name), atol=1e-5), name


def test_a_fresh_model_runs_in_eval_mode(captioned_batch):
    """The visual dictionary is filled by the first training batch; before that, eval masks no visual tokens."""
    torch.manual_seed(0)
    model = AshNetsForPreTraining(tiny_config()).eval()
    with torch.no_grad():
        outputs = model(**captioned_batch)
    assert torch.isfinite(outputs.loss) and outputs.mvm_loss == 0
    assert not bool(model.visual_dictionary.initialized)


def test_a_masking_of_the_callers_own_is_checked_at_the_boundary(captioned_batch):
    model = AshNetsForPreTraining(tiny_config())
    with pytest.raises(TypeError, match="masked_input_ids must hold integer token ids"):
        model(**captioned_batch, masked_input_ids=captioned_batch["input_ids"].float(),
              mlm_labels=captioned_batch["input_ids"])
