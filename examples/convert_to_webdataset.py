#!/usr/bin/env python
"""Write COCO captions and/or Visual Genome region phrases as webdataset tar shards for `examples/pretrain.py`.

    python examples/convert_to_webdataset.py --coco_captions annotations/captions_train2017.json \\
        --coco_images train2017 --output_dir shards/coco
    python examples/convert_to_webdataset.py --vg_regions region_descriptions.json \\
        --vg_images VG_100K VG_100K_2 --output_dir shards/vg

Each sample becomes `<key>.jpg` (original JPEG bytes), `<key>.txt` (the caption or phrase) and `<key>.json` (source
and original path). Missing or corrupt images are left out and counted; the summary is printed and saved as
`conversion.json` in the output folder. Pre-train on the shards with `--webdataset 'shards/coco/*.tar'`.
"""

import argparse
import json
import os
import sys

from modeling_ashnets.data import pretraining as corpus
from modeling_ashnets.data.webdataset_writer import write_webdataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coco_captions", help="COCO captions JSON")
    parser.add_argument("--coco_images", help="folder of the COCO images")
    parser.add_argument("--vg_regions", help="Visual Genome region_descriptions.json")
    parser.add_argument("--vg_images", nargs="+", help="Visual Genome image folders")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--samples_per_shard", type=int, default=10000)
    args = parser.parse_args(argv)
    if bool(args.coco_captions) != bool(args.coco_images) or bool(args.vg_regions) != bool(args.vg_images):
        parser.error("--coco_captions goes with --coco_images, and --vg_regions with --vg_images.")
    if not (args.coco_captions or args.vg_regions):
        parser.error("Name a source: --coco_captions/--coco_images and/or --vg_regions/--vg_images.")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    summary = {}
    if args.coco_captions:
        rows = corpus.load_coco_captions(args.coco_captions, args.coco_images, streaming=True, num_shards=1)
        summary["coco"] = write_webdataset(rows, args.output_dir, "coco", args.samples_per_shard)
    if args.vg_regions:
        rows = corpus.load_visual_genome_regions(args.vg_regions, args.vg_images, streaming=True, num_shards=1)
        summary["visual_genome"] = write_webdataset(rows, args.output_dir, "vg", args.samples_per_shard)
    with open(os.path.join(args.output_dir, "conversion.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")
    for source, stats in summary.items():
        print(f"{source}: {stats['samples']} samples in {len(stats['shards'])} shards, {stats['skipped']} skipped")
        for reason in stats["skipped_examples"][:5]:
            print(f"  skipped {reason}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
