"""`make demo`: fine-tune ashnets-tiny on easy-VQA, evaluate it on the whole test split, reload it and ask it a question.

This is the same code path a researcher uses at scale (examples/run_vqa.py -> modeling_ashnets.training, with
Accelerate), on the easy-VQA data set that ships on PyPI: 38,575 training questions about 4,000 64x64 images,
9,673 test questions, 13 answers. The checkpoint, processor and eval_results.json go to runs/easy-vqa/.
"""

import argparse
import os
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser

# The demo's recipe (see README, "Fine-tuning"): measured to reach its accuracy on 2 CPU cores in minutes.
DEMO_ARGUMENTS = [
    "--dataset", "easy-vqa",
    "--preset", "ashnets-tiny",
    "--num_train_epochs", "6",
    "--per_device_train_batch_size", "64",
    "--per_device_eval_batch_size", "256",
    "--learning_rate", "1e-3",
    # Small from-scratch transformers train faster with a wider initialisation than BERT's 0.02 and no dropout; a
    # softmax over the answers (each easy-VQA question has one) learns the yes/no questions faster than ViLT's BCE.
    "--config_overrides",
    "initializer_range=0.05,hidden_dropout_prob=0,attention_probs_dropout_prob=0,vqa_loss=softmax",
    # The four kinds of question (color, shape, yes/no about a color, yes/no about a shape) equally often, and within
    # each its answers: in the natural mix (74 % yes/no) shape stays at chance, and a yes/no kind answered "no" 88 %
    # of the time can sit at "always no" for thousands of steps (README, "Does it look?").
    "--balance_by", "question_type,answers",
    "--warmup_ratio", "0.05",
    "--image_cache_size", "5000",
    "--logging_steps", "20",
]


@dataclass
class DemoArguments:
    """The demo's own options; any other option goes to examples/run_vqa.py, after the recipe's."""

    output_dir: str = "runs/easy-vqa"
    num_train_epochs: str | None = field(default=None, metadata={"help": "override the demo's number of epochs"})


def main():
    # The neighbouring script, on sys.path when this file runs as a script; imported here, not at the top, so that
    # the benchmarks can import DEMO_ARGUMENTS from `examples.demo_easy_vqa`.
    import run_vqa

    parser = HfArgumentParser(DemoArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args, extra = parser.parse_args_into_dataclasses(return_remaining_strings=True, look_for_args_file=False)
    arguments = [*DEMO_ARGUMENTS, "--output_dir", args.output_dir, *extra]
    if args.num_train_epochs is not None:
        arguments += ["--num_train_epochs", args.num_train_epochs]

    result = run_vqa.main(arguments)
    metrics, trained = result.eval_metrics, result.train_metrics
    print(f"\neasy-VQA test accuracy: {metrics['eval_accuracy']:.4f} on {metrics['eval_samples']} questions")
    for key, value in sorted(metrics.items()):
        if key.startswith("eval_accuracy_"):
            print(f"  {key[len('eval_accuracy_'):]:>8} questions: {value:.4f}")
    print(f"trained {trained['train_steps']} steps in {trained['train_runtime']:.0f} s "
          f"({trained['train_samples_per_second']:.0f} samples/s)")

    # Load the saved folder back as a user would, through the Auto classes.
    import modeling_ashnets  # noqa: F401  (registers the Auto classes)
    from easy_vqa import get_test_image_paths, get_test_questions
    from transformers import AutoModelForVisualQuestionAnswering, AutoProcessor

    model = AutoModelForVisualQuestionAnswering.from_pretrained(args.output_dir).eval()
    processor = AutoProcessor.from_pretrained(args.output_dir, backend="pil")
    questions, answers, image_ids = get_test_questions()
    image = get_test_image_paths()[image_ids[0]]
    with torch.no_grad():
        outputs = model(**processor(images=[image], text=[questions[0]], return_tensors="pt"))
    answer = model.config.id2label[int(outputs.logits.argmax(-1))]
    print(f"\nreloaded from {args.output_dir}: Q: {questions[0]!r} about {os.path.basename(image)} -> {answer!r} "
          f"(truth {answers[0]!r})")
    rates = outputs.snn_firing_rates[0].tolist()
    print("SNN firing rate per layer: " + ", ".join(f"layer {i}: {r:.4f}" for i, r in enumerate(rates)))


if __name__ == "__main__":
    main()
