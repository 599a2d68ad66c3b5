"""GSHN's own parts: segment pooling, geometry, the graph and its attention (against PyTorch Geometric's GATConv),
empty slots, input errors. transformers' common tests run on every GSHN class in test_transformers_common.py."""

import pytest
import torch
from conftest import random_segment_ids, tiny_config, tiny_gshn_config

from modeling_ashnets import (
    AshNetsForQuestionAnswering,
    GshnConfig,
    GshnForImagesAndTextClassification,
    GshnForQuestionAnswering,
    GshnModel,
)
from modeling_ashnets.modeling_gshn import (
    segment_adjacency,
    segment_geometry,
    segment_one_hot,
    segment_outline,
)
from modeling_ashnets.tasks import TASKS, task_of_head


def seeded(cls=GshnModel, **overrides):
    torch.manual_seed(0)
    return cls(tiny_gshn_config(**overrides)).eval()


def inputs(batch_size=2, size=64, max_segments=5):
    torch.manual_seed(1)
    ids = torch.randint(1000, 2000, (batch_size, 6))
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "pixel_values": torch.randn(batch_size, 3, size, size),
            "segment_ids": random_segment_ids(batch_size, size, max_segments)}


def test_presets():
    tiny = GshnConfig.from_preset("gshn-tiny")
    assert (tiny.model_type, tiny.max_segments, tiny.num_visual_tokens, tiny.backbone_stride) == ("gshn", 8, 9, 16)
    base = GshnConfig.from_preset("gshn-base")
    assert (base.backbone, base.hidden_size, base.num_hidden_layers, base.max_segments) == ("resnet-152", 768, 12, 32)
    with pytest.raises(ValueError, match="Unknown GshnConfig preset 'ashnets-tiny'"):
        GshnConfig.from_preset("ashnets-tiny")
    with pytest.raises(Exception, match="snn_input_mode='repeat'"):
        GshnConfig(snn_input_mode="similar")
    with pytest.raises(Exception, match="graph_num_heads"):
        GshnConfig(graph_num_heads=5)


def test_heads_are_found_by_task():
    for task in TASKS.values():
        assert task_of_head(task.head_for("Gshn")) is task
    assert task_of_head("GshnModel") is None


def test_graph_attention_equals_pytorch_geometric_gatconv():
    """The dense layer is GATConv (concat heads, bias) on the same graph: equal outputs for equal weights."""
    pytest.importorskip("torch_geometric")
    from benchmarks.bench_gat import layers  # the dense layer and a GATConv holding its weights

    torch.manual_seed(0)
    batch, nodes, hidden, heads = 3, 6, 16, 4
    dense, reference = layers(hidden, heads)
    features = torch.randn(batch, nodes, hidden)
    adjacency = torch.rand(batch, nodes, nodes) < 0.4
    adjacency |= adjacency.transpose(1, 2) | torch.eye(nodes, dtype=torch.bool)
    image, receiver, sender = adjacency.nonzero(as_tuple=True)
    edges = torch.stack([image * nodes + sender, image * nodes + receiver])  # PyG: row 0 sends, row 1 receives
    expected = reference(features.reshape(batch * nodes, hidden), edges).view(batch, nodes, hidden)
    torch.testing.assert_close(dense(features, adjacency), expected, rtol=1e-5, atol=1e-5)


def test_geometry_and_adjacency_of_drawn_segments():
    ids = torch.full((1, 8, 8), -1)
    ids[0, 0:4, 0:2] = 0  # left block, touching segment 1
    ids[0, 0:4, 2:4] = 1
    ids[0, 6:8, 6:8] = 2  # apart
    masks = segment_one_hot(ids, 4, torch.float32)
    geometry = segment_geometry(masks)[0]
    torch.testing.assert_close(geometry[0], torch.tensor([1 / 8, 2 / 8, 2 / 8, 4 / 8, 8 / 64]))
    torch.testing.assert_close(geometry[2], torch.tensor([7 / 8, 7 / 8, 2 / 8, 2 / 8, 4 / 64]))
    assert geometry[3].abs().sum() == 0  # an empty slot
    adjacency = segment_adjacency(masks)[0]
    assert adjacency[0, 1] and adjacency[1, 0] and adjacency[0, 0]
    assert not adjacency[0, 2] and not adjacency[2, 1] and not adjacency[3].any()


def test_outline_tells_shapes_apart_whatever_their_size_and_place():
    """A segment's outline is its mask inside its bounding box: the same for a square anywhere at any size, different
    for a triangle; zeros for an empty slot."""
    ids = torch.full((1, 32, 32), -1)
    ids[0, 2:6, 3:7] = 0  # small square
    ids[0, 12:28, 10:26] = 1  # large square
    rows, columns = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    triangle = (columns >= 16) & (columns - 16 <= rows) & (rows < 16)  # a right triangle in the top-right corner
    ids[0][triangle & (ids[0] == -1)] = 2
    outline = segment_outline(segment_one_hot(ids, 4, torch.float32), 4)[0]
    torch.testing.assert_close(outline[0], torch.ones(16))
    torch.testing.assert_close(outline[1], torch.ones(16))
    assert outline[2].min() == 0 and outline[2].max() == 1  # half the box: the triangle's own pattern
    assert outline[3].abs().sum() == 0
    assert segment_outline(segment_one_hot(ids, 4, torch.float32), 0).shape == (1, 4, 0)


@pytest.mark.parametrize("size", [0, 3])
def test_outline_size_sets_the_token_input(size):
    model = seeded(GshnForQuestionAnswering, num_labels=4, segment_outline_size=size).train()
    assert (model.ashnets.node_embeddings.outline is None) == (size == 0)
    model(**inputs(), labels=torch.tensor([1, 3])).loss.backward()
    with pytest.raises(Exception, match="segment_outline_size"):
        tiny_gshn_config(segment_outline_size=-1)


def test_nodes_pool_the_cells_their_segment_covers():
    """A segment that covers exactly one CNN cell (16x16 pixels at stride 16) is that cell's feature; the global node
    is the mean of all cells; the graph links the global node to every present segment."""
    model = seeded(graph_global_node=True)
    pixels = torch.randn(1, 3, 64, 64)
    ids = torch.zeros(1, 64, 64, dtype=torch.long)
    ids[0, 16:32, 32:48] = 1  # cell (row 1, column 2)
    ids[0, 48:64, 0:16] = 2  # cell (3, 0)
    with torch.no_grad():
        cells, (rows, columns) = model.visual_encoder(pixels)
        nodes, graph = model.cnn_features(pixels, ids)
    assert (rows, columns) == (4, 4)
    torch.testing.assert_close(nodes[0, 0], cells[0].mean(dim=0))
    torch.testing.assert_close(nodes[0, 2], cells[0, 1 * 4 + 2])
    torch.testing.assert_close(nodes[0, 3], cells[0, 3 * 4 + 0])
    others = [index for index in range(16) if index not in (6, 12)]
    torch.testing.assert_close(nodes[0, 1], cells[0, others].mean(dim=0))
    assert graph.present[0].tolist() == [True, True, True, True, False, False]
    assert graph.adjacency[0, 0, :4].all() and graph.adjacency[0, :4, 0].all()
    assert graph.adjacency[0, 1, 2] and not graph.adjacency[0, 2, 3]  # the background touches both; they do not
    assert graph.adjacency[0, 4].tolist() == [False, False, False, False, True, False]  # an empty slot: itself only


def test_empty_slots_become_the_no_segment_token():
    model = seeded()
    batch = inputs(batch_size=1)
    with torch.no_grad():
        visual, graph, *_ = model.visual_features(batch["pixel_values"], segment_ids=batch["segment_ids"])
        tokens = model.embed_visual(visual, graph)
    empty = ~graph.present[0]
    assert empty.any() and graph.present[0, 0]
    expected = model.node_embeddings.empty_segment + model.modality_type_embeddings.weight[1]
    torch.testing.assert_close(tokens[0, empty], expected.expand(int(empty.sum()), -1))


@pytest.mark.parametrize("overrides", [{"graph_num_layers": 0}, {"use_snn": False}, {"graph_global_node": False}])
def test_ablations_run_and_train(overrides):
    model = seeded(GshnForQuestionAnswering, num_labels=4, **overrides).train()
    output = model(**inputs(), labels=torch.tensor([1, 3]))
    output.loss.backward()
    unused = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert unused == [], unused


def test_snn_summary_averages_present_segments_only():
    model = seeded()
    batch = inputs(batch_size=1)
    with torch.no_grad():
        _, graph, _, summary, spikes = model.visual_features(batch["pixel_values"], segment_ids=batch["segment_ids"])
    rates = spikes[-1].float().mean(dim=0)[0]  # (N, snn_hidden): the last block's firing rate per node
    torch.testing.assert_close(summary[0], rates[graph.present[0]].mean(dim=0))


def test_nlvr2_takes_a_pair_of_segment_maps():
    model = seeded(GshnForImagesAndTextClassification)
    batch = inputs(batch_size=4)
    pairs = {"input_ids": batch["input_ids"][:2], "pixel_values": batch["pixel_values"].view(2, 2, 3, 64, 64),
             "segment_ids": batch["segment_ids"].view(2, 2, 64, 64)}
    with torch.no_grad():
        logits = model(**pairs).logits
    assert logits.shape == (2, 2)


def test_bad_segments_get_clear_errors():
    batch = inputs()
    model = seeded(GshnForQuestionAnswering)
    with pytest.raises(ValueError, match="pass segment_ids"):
        model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"])
    with pytest.raises(TypeError, match="integer segment indices"):
        model(**{**batch, "segment_ids": batch["segment_ids"].float()})
    with pytest.raises(ValueError, match=r"must be \(batch, height, width\) = \(2, 64, 64\)"):
        model(**{**batch, "segment_ids": batch["segment_ids"][:, :32]})
    with pytest.raises(ValueError, match=r"must lie in \[-1, 5\)"):
        seeded(GshnForQuestionAnswering)(**{**batch, "segment_ids": batch["segment_ids"] + 5})
    with pytest.raises(ValueError, match=r"Images \[1\] have no segment"):
        empty = batch["segment_ids"].clone()
        empty[1] = -1
        seeded(GshnForQuestionAnswering)(**{**batch, "segment_ids": empty})


def test_ashnets_refuses_segments():
    torch.manual_seed(0)
    model = AshNetsForQuestionAnswering(tiny_config(num_labels=3)).eval()
    batch = inputs()
    with pytest.raises(ValueError, match="segment_ids are GSHN's input"):
        model(**batch)


def test_save_and_load(tmp_path):
    model = seeded(GshnForQuestionAnswering, num_labels=3)
    batch = inputs()
    with torch.no_grad():
        expected = model(**batch).logits
    model.save_pretrained(tmp_path)
    loaded = GshnForQuestionAnswering.from_pretrained(tmp_path).eval()
    base = GshnModel.from_pretrained(tmp_path).eval()  # a head checkpoint loads into the base model
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, expected, rtol=0, atol=0)
        torch.testing.assert_close(base(**batch).pooler_output, model.ashnets(**batch).pooler_output)


def test_hardest_negative_triplet_loss_by_hand():
    from modeling_ashnets.losses import hardest_negative_triplet_loss

    similarity = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.5, 0.6], [0.0, 0.3, 0.7]])
    positives = torch.eye(3, dtype=torch.bool)
    # image 0: caption 1 is 0.1 short of the margin; image 1: caption 2 beats its own by 0.1 (+0.2 margin) and
    # image 0's 0.8 for caption 1 beats it by 0.3 (+0.2); image 2: its hardest image (1: 0.6) is within 0.1.
    expected = ((0.2 - 0.9 + 0.8) + 0.0 + (0.2 - 0.5 + 0.6) + (0.2 - 0.5 + 0.8) + 0.0 + (0.2 - 0.7 + 0.6)) / 3
    torch.testing.assert_close(hardest_negative_triplet_loss(similarity, positives), torch.tensor(expected))
    everything = torch.ones(3, 3, dtype=torch.bool)  # one caption for all: no negatives, no loss
    assert hardest_negative_triplet_loss(similarity, everything) == 0


def test_pretraining_objectives_stl_and_pairs():
    from modeling_ashnets import AshNetsForPreTraining, GshnForPreTraining

    batch = inputs(batch_size=3)
    torch.manual_seed(0)
    gshn = GshnForPreTraining(tiny_gshn_config()).train()
    output = gshn(**batch)
    assert output.stl_loss > 0 and output.pair_loss >= 0 and output.stua_loss is not None
    output.loss.backward()
    assert gshn.stl_projection.weight.grad.abs().sum() > 0
    off = GshnForPreTraining(tiny_gshn_config(stl_weight=0, pair_weight=0)).train()(**batch)
    assert off.stl_loss is None and off.pair_loss is None
    torch.manual_seed(0)
    ashnets = AshNetsForPreTraining(tiny_config(stl_weight=1.0, pair_weight=0.5)).train()  # ASH-Nets takes them too
    del batch["segment_ids"]
    assert ashnets(**batch).stl_loss is not None
    with pytest.raises(ValueError, match="STL aligns the SNN's summary"):
        GshnForPreTraining(tiny_gshn_config(use_snn=False, stua_weight=0))
