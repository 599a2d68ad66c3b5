"""What do the easy-VQA retrieval models still get wrong? For each saved model of a `bench_derived.py` retrieval
variant: every wrong top-1 (image->text and text->image), which attributes of the caption it gets wrong, and how close
the misread image's shape lies to the line that decides those attributes (the area threshold of "small" / "large", the
thirds of the image that decide the position). Errors that sit on those lines are the labels' ambiguity, not a
model that does not look.

    python -m benchmarks.bench_retrieval_errors --variant retrieval-scratch-pooler

Reads runs/derived/<variant>/seed-*/ (the models bench_derived.py saved); writes
benchmarks/results/retrieval_errors.json and retrieval_errors.md.
"""

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from benchmarks.results_files import machine, write_results
from modeling_ashnets import AshNetsForRetrieval, AshNetsProcessor
from modeling_ashnets.data.easy_vqa import LARGE_AREA, easy_vqa_image_facts, shape_mask

ROOT = Path(__file__).resolve().parents[1]

ATTRIBUTES = ("color", "shape", "size", "position")


def test_gallery():
    """The retrieval test gallery's facts (one image per description) and its captions, two per image."""
    first = {}
    for fact in easy_vqa_image_facts("test"):
        first.setdefault(fact.caption(), fact)
    facts = list(first.values())
    return facts, [fact.caption(template) for fact in facts for template in (0, 1)]


@torch.no_grad()
def similarities(folder: Path, facts, captions) -> torch.Tensor:
    """(images, captions) contrastive similarities of the model saved in `folder`."""
    from PIL import Image

    model = AshNetsForRetrieval.from_pretrained(folder).eval()
    processor = AshNetsProcessor.from_pretrained(folder)
    images = [Image.open(fact.path).convert("RGB") for fact in facts]
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    image_embeds = torch.cat([model.ashnets(pixel_values=pixels[i:i + 128]).image_embeds
                              for i in range(0, len(pixels), 128)])
    tokens = dict(processor(text=captions, return_tensors="pt"))
    text_embeds = torch.cat([model.ashnets(**{k: v[i:i + 128] for k, v in tokens.items()}).text_embeds
                             for i in range(0, len(captions), 128)])
    return image_embeds @ text_embeds.t()


def distance_to_boundary(fact, attribute: str) -> float:
    """How far the shape is from changing `attribute`: |area - LARGE_AREA| as a share of the image (size), or the
    centroid's distance in pixels to the nearest line between thirds, either way (position)."""
    mask = shape_mask(fact.path)
    if attribute == "size":
        return float(abs(mask.mean() - LARGE_AREA))
    rows, columns = np.nonzero(mask)
    height, width = mask.shape
    lines = [abs(rows.mean() - height * third) for third in (1 / 3, 2 / 3)]
    lines += [abs(columns.mean() - width * third) for third in (1 / 3, 2 / 3)]
    return float(min(lines))


def errors(similarity: torch.Tensor, facts) -> dict:
    """Per direction: wrong top-1s counted by the attributes that differ, and for single-attribute size and position
    errors the distance to that attribute's boundary of the image that was misread (image->text: the query image;
    text->image: the image retrieved in place of the right one)."""
    result = {}
    for direction, scores in (("image_to_text", similarity), ("text_to_image", similarity.t())):
        differing, near = Counter(), {"size": [], "position": []}
        for query in range(scores.shape[0]):
            best = scores[query].argmax().item()
            truth = facts[query] if direction == "image_to_text" else facts[query // 2]
            found = facts[best // 2] if direction == "image_to_text" else facts[best]
            if found is truth:
                continue
            wrong = tuple(name for name in ATTRIBUTES if getattr(truth, name) != getattr(found, name))
            differing[" + ".join(wrong)] += 1
            if len(wrong) == 1 and wrong[0] in near:
                # The image on the wrong side of the boundary: the query image whose caption was missed, or the
                # gallery image taken for the caption's.
                near[wrong[0]].append(distance_to_boundary(truth if direction == "image_to_text" else found, wrong[0]))
        result[direction] = {"queries": scores.shape[0], "errors": sum(differing.values()),
                             "by_attribute": dict(differing.most_common()), "boundary_distance": near}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, help="a bench_derived.py retrieval variant's name")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    facts, captions = test_gallery()
    everyone = {"size": [distance_to_boundary(fact, "size") for fact in facts],
                "position": [distance_to_boundary(fact, "position") for fact in facts]}
    seeds = {}
    for folder in sorted((ROOT / "runs" / "derived" / args.variant).glob("seed-*")):
        seeds[folder.name] = errors(similarities(folder, facts, captions), facts)
    if not seeds:
        raise SystemExit(f"No saved models in runs/derived/{args.variant}/: run bench_derived.py for it first.")
    rows = ["| seed | direction | wrong top-1 | attributes wrong | size errors: area distance to "
            f"{LARGE_AREA} (median) | position errors: centroid distance to a third, px (median) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for seed, result in seeds.items():
        for direction, found in result.items():
            median = {name: f"{np.median(values):.3f}" if values else "-"
                      for name, values in found["boundary_distance"].items()}
            attributes = ", ".join(f"{name} {count}" for name, count in found["by_attribute"].items())
            rows.append(f"| {seed} | {direction.replace('_', ' ')} | {found['errors']} of {found['queries']} | "
                        f"{attributes} | {median['size']} | {median['position']} |")
    rows.append(f"\nAll {len(facts)} gallery images: median area distance {np.median(everyone['size']):.3f}, "
                f"median centroid distance {np.median(everyone['position']):.2f} px (64 x 64 images).\n")
    table = "\n".join(rows) + "\n"
    write_results(str(ROOT / "benchmarks" / "results"), "retrieval_errors",
                  {"variant": args.variant, "machine": machine(), "seeds": seeds,
                   "gallery_median_distance": {k: float(np.median(v)) for k, v in everyone.items()}}, table)
    print(table)


if __name__ == "__main__":
    main()
