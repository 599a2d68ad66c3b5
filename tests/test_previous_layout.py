"""Checkpoints written before a change of the model's module layout still load and compute the same.

`tests/fixtures/previous_layout/` holds one tiny checkpoint per class, saved by main before issue 13 reorganised
the heads (commit 0d1e3fb), and the fused encoder's output on fixed inputs at that time."""

from pathlib import Path

import pytest
import torch

import modeling_ashnets as ashnets

FIXTURE = Path(__file__).parent / "fixtures" / "previous_layout"
CLASSES = sorted(path.name for path in FIXTURE.iterdir() if path.is_dir())


def test_the_fixture_covers_every_class():
    assert set(CLASSES) == {"AshNetsModel", "AshNetsForQuestionAnswering", "AshNetsForEntailment",
                            "AshNetsForImagesAndTextClassification", "AshNetsForRetrieval", "AshNetsForPreTraining"}


@pytest.mark.parametrize("name", CLASSES)
def test_previous_layout_loads_with_every_weight_and_equal_outputs(name):
    recorded = torch.load(FIXTURE / "expected.pt")
    model, info = getattr(ashnets, name).from_pretrained(FIXTURE / name, output_loading_info=True)
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    encoder = model if isinstance(model, ashnets.AshNetsModel) else model.ashnets
    with torch.no_grad():
        hidden = encoder(**recorded["inputs"], return_dict=True).last_hidden_state
    torch.testing.assert_close(hidden, recorded["expected"][name])
