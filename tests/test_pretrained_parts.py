import pytest
import torch
from transformers import BertModel, ResNetConfig, ResNetModel

from conftest import tiny_config
from modeling_ashnets import AshNetsForQuestionAnswering, AshNetsModel, init_backbone_from_resnet, init_fusion_from_bert


def minilm_shaped_config(**overrides):
    """all-MiniLM-L6-v2 is a 6-layer BERT of width 384 with 12 heads; take its first two layers."""
    values = dict(hidden_size=384, num_attention_heads=12, intermediate_size=1536, max_position_embeddings=512, num_hidden_layers=2)
    return tiny_config(**{**values, **overrides})


def test_fusion_from_bert_reproduces_bert(minilm_path, tokenizer):
    torch.manual_seed(0)
    model = AshNetsModel(minilm_shaped_config()).eval()
    report = init_fusion_from_bert(model, minilm_path)
    assert "encoder.layers.1.fc2.weight" in report["loaded"]
    assert any(key.startswith("encoder.layer.5.") for key in report["skipped"])  # layers 2-5 are not used

    bert = BertModel.from_pretrained(minilm_path).eval()
    torch.testing.assert_close(model.text_embeddings.word_embeddings.weight, bert.embeddings.word_embeddings.weight)
    # With the modality embedding at zero, a text-only pass is exactly BERT's first two layers.
    model.modality_type_embeddings.weight.data.zero_()
    batch = tokenizer(["a red circle on a white background", "is there a blue triangle?"], padding=True, return_tensors="pt")
    ours = model(**batch).last_hidden_state
    theirs = bert(**batch, output_hidden_states=True).hidden_states[2]
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-4, rtol=1e-4)


def test_fusion_from_bert_into_a_head(minilm_path):
    model = AshNetsForQuestionAnswering(minilm_shaped_config(id2label={0: "yes", 1: "no"}))
    init_fusion_from_bert(model, minilm_path)
    bert = BertModel.from_pretrained(minilm_path)
    torch.testing.assert_close(model.ashnets.encoder.layers[0].self_attn.q_proj.weight, bert.encoder.layer[0].attention.self.query.weight)


def test_fusion_size_mismatch_names_both_shapes(minilm_path):
    model = AshNetsModel(tiny_config())  # width 32, not 384
    before = model.text_embeddings.word_embeddings.weight.clone()
    with pytest.raises(ValueError, match=r"the checkpoint has shape \(.*384.*\) but the ASH-Nets model has \(.*32.*\)"):
        init_fusion_from_bert(model, minilm_path)
    assert torch.equal(before, model.text_embeddings.word_embeddings.weight)  # nothing partially written


def test_fusion_from_bert_needs_enough_layers(minilm_path):
    with pytest.raises(ValueError, match="has 6 transformer layers but the model has 8"):
        init_fusion_from_bert(AshNetsModel(minilm_shaped_config(num_hidden_layers=8)), minilm_path)


def test_missing_checkpoint_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model.safetensors or pytorch_model.bin"):
        init_fusion_from_bert(AshNetsModel(tiny_config()), tmp_path)


def resnet_config():
    return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic")


def test_backbone_from_saved_resnet(tmp_path):
    torch.manual_seed(3)
    resnet = ResNetModel(resnet_config()).eval()
    resnet.save_pretrained(tmp_path)
    model = AshNetsModel(tiny_config()).eval()
    report = init_backbone_from_resnet(model, tmp_path)
    assert "embedder.embedder.convolution.weight" in report["loaded"]
    pixels = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model.visual_encoder.backbone(pixels), resnet(pixels).last_hidden_state)


def test_backbone_mismatches(tmp_path):
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 64], depths=[1, 1, 1, 1], layer_type="basic")).save_pretrained(tmp_path / "wide")
    with pytest.raises(ValueError, match=r"checkpoint has shape \(64, 16, 1, 1\) but the ASH-Nets model has \(32, 16, 1, 1\)"):
        init_backbone_from_resnet(AshNetsModel(tiny_config()), tmp_path / "wide")
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic")).save_pretrained(tmp_path / "shallow")
    with pytest.raises(ValueError, match="lacks .* tensors of the configured backbone"):
        init_backbone_from_resnet(AshNetsModel(tiny_config(backbone_config={**resnet_config().to_dict(), "depths": [2, 1, 1, 1]})), tmp_path / "shallow")
