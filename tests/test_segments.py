"""Segment id maps from every source: the shared contract (int64, ids 0..k-1 by decreasing area, -1 for none,
k <= max_segments), exact segments on drawn shapes, easy-VQA's real PNGs, COCO panoptic PNGs, a tiny Mask2Former."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from modeling_ashnets.segments import (
    SEGMENT_SOURCES,
    compute_segments,
    limit_segments,
    panoptic_model_segments,
    read_coco_panoptic,
    resize_segment_ids,
    segments_from_pixels,
    superpixel_segments,
)

# (kind, box, colour): non-overlapping flat shapes on white, two of them red so colour alone cannot separate them.
SCENE = (
    ("ellipse", (4, 6, 30, 32), (255, 0, 0)),
    ("rectangle", (40, 8, 70, 24), (0, 0, 255)),
    ("polygon", ((50, 90), (90, 90), (70, 50)), (0, 128, 128)),
    ("rectangle", (8, 60, 22, 70), (255, 0, 0)),
    ("ellipse", (74, 4, 90, 20), (128, 128, 128)),
)


def draw(canvas: ImageDraw.ImageDraw, kind: str, where, fill) -> None:
    getattr(canvas, kind)(where, fill=fill)


def draw_scene(shapes=SCENE, size=96) -> tuple[Image.Image, list[np.ndarray]]:
    """A white 96x96 scene without anti-aliasing and each shape's own pixel mask."""
    image = Image.new("RGB", (size, size), "white")
    masks = []
    for kind, where, color in shapes:
        draw(ImageDraw.Draw(image), kind, where, color)
        mask = Image.new("L", (size, size), 0)
        draw(ImageDraw.Draw(mask), kind, where, 255)
        masks.append(np.asarray(mask) > 0)
    return image, masks


def assert_contract(id_map: np.ndarray, max_segments: int, covers_all: bool = False) -> int:
    """The convention every source returns; gives the number of segments."""
    assert isinstance(id_map, np.ndarray) and id_map.dtype == np.int64 and id_map.ndim == 2
    assert id_map.min() >= -1
    count = int(id_map.max()) + 1
    assert count <= max_segments
    areas = np.bincount(id_map[id_map >= 0], minlength=count)
    assert (areas > 0).all(), "ids are not contiguous"
    assert (np.diff(areas) <= 0).all(), "segments are not ordered by decreasing area"
    if covers_all:
        assert id_map.min() == 0
    return count


@pytest.fixture(scope="module")
def easy_vqa_paths():
    import easy_vqa

    paths = easy_vqa.get_test_image_paths()
    return [paths[index] for index in range(6)]


# --- limit_segments ---------------------------------------------------------------------------------------------


def test_limit_segments_relabels_arbitrary_ids_by_decreasing_area():
    labels = np.array([[7, 7, 300, 300, 300], [7, 42, 300, 300, 300], [5, 5, 300, 300, 300]])
    out = limit_segments(labels, 10)
    assert_contract(out, 10, covers_all=True)
    # 300 (9 px), 7 (3 px), then 5 and 42 tie-break: 5 has 2 px, 42 has 1 px
    expected = np.array([[1, 1, 0, 0, 0], [1, 3, 0, 0, 0], [2, 2, 0, 0, 0]])
    np.testing.assert_array_equal(out, expected)
    # equal areas: the segment whose first pixel comes first (raster order) gets the lower id
    np.testing.assert_array_equal(limit_segments(np.array([[9, 9, 1, 1]]), 4), [[0, 0, 1, 1]])
    assert limit_segments(torch.tensor(labels), 10).dtype == np.int64


def test_limit_segments_ignore_value_and_idempotence():
    labels = np.array([[0, 0, 3, 3], [0, 2, 3, 3], [-1, 2, 2, 0]])
    out = limit_segments(labels, 5, ignore_value=0)  # skimage's background label
    np.testing.assert_array_equal(out == -1, labels == 0)
    assert_contract(out, 5)
    default = limit_segments(labels, 5)  # -1 ignored: feeding an output back in keeps it unchanged
    np.testing.assert_array_equal(default == -1, labels == -1)
    np.testing.assert_array_equal(limit_segments(default, 5), default)
    everything = limit_segments(labels, 5, ignore_value=None)
    assert everything.min() == 0 and everything.max() == 3


def test_limit_segments_merges_the_smallest_into_its_longest_border():
    labels = np.zeros((6, 6), dtype=np.int64)
    labels[:, 3:] = 1
    labels[1:5, 3] = 2  # shares 4 pixel edges with segment 0 (its left) and 6 with segment 1 (right, top, bottom)
    out = limit_segments(labels, 2)
    assert assert_contract(out, 2, covers_all=True) == 2
    np.testing.assert_array_equal(out == out[0, 5], labels > 0)
    np.testing.assert_array_equal(out == out[0, 0], labels == 0)


def test_limit_segments_keeps_every_pixel_and_merges_islands_into_the_nearest():
    labels = np.full((7, 11), -1)
    labels[:, :3] = 10
    labels[4:, 8:] = 20
    labels[:4, 8:] = 30
    labels[3, 5:7] = 40  # touches no segment: 3 pixels from segment 10, 2 from segment 30 at (3, 8)
    out = limit_segments(labels, 3)
    assert assert_contract(out, 3) == 3
    np.testing.assert_array_equal(out == -1, labels == -1)
    assert out[3, 5] == out[3, 8] and out[3, 5] not in (out[0, 0], out[6, 8])
    many = np.arange(64).reshape(8, 8)  # every pixel its own segment
    for max_segments in (1, 5, 63):
        out = limit_segments(many, max_segments)
        assert assert_contract(out, max_segments, covers_all=True) == max_segments


def test_limit_segments_rejects_bad_inputs():
    with pytest.raises(ValueError, match="2-D"):
        limit_segments(np.zeros((2, 3, 3), dtype=np.int64), 4)
    with pytest.raises(ValueError, match="integer labels.*astype"):
        limit_segments(np.zeros((3, 3)), 4)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="max_segments must be an integer >= 1"):
            limit_segments(np.zeros((3, 3), dtype=np.int64), bad)


# --- segments_from_pixels ---------------------------------------------------------------------------------------


def test_pixel_segments_are_exactly_the_drawn_shapes(tmp_path):
    image, masks = draw_scene()
    path = tmp_path / "scene.png"
    image.save(path)
    for source in (path, str(path), image, np.asarray(image)):
        id_map = segments_from_pixels(source, max_segments=8)
        assert assert_contract(id_map, 8, covers_all=True) == len(SCENE) + 1
        for mask in masks:
            np.testing.assert_array_equal(id_map == id_map[mask][0], mask)
        background = ~np.any(masks, axis=0)
        np.testing.assert_array_equal(id_map == 0, background)  # the background is one (the largest) segment


def test_pixel_segments_keep_a_split_background_whole_and_merge_specks():
    ring = (("ellipse", (10, 10, 80, 80), (0, 0, 255)), ("ellipse", (30, 30, 60, 60), (255, 255, 255)))
    image, masks = draw_scene(ring)
    canvas = ImageDraw.Draw(image)
    canvas.rectangle((2, 90, 3, 91), fill=(255, 0, 0))  # a 2x2 speck: merges into the background around it
    canvas.point((45, 45), fill=(0, 0, 0))  # a 1-pixel speck inside the ring's hole
    id_map = segments_from_pixels(image, max_segments=8)
    assert assert_contract(id_map, 8, covers_all=True) == 2  # the white outside and the hole are one segment
    np.testing.assert_array_equal(id_map == 1, masks[0] & ~masks[1])


def test_pixel_segments_respect_max_segments_by_merging_the_smallest():
    image, masks = draw_scene()
    id_map = segments_from_pixels(image, max_segments=3)
    assert assert_contract(id_map, 3, covers_all=True) == 3
    areas = [mask.sum() for mask in masks]
    largest = masks[int(np.argmax(areas))]
    np.testing.assert_array_equal(id_map == id_map[largest][0], largest)  # the largest shape is untouched


def test_pixel_segments_tolerate_jpeg_and_noise(tmp_path):
    image, masks = draw_scene()
    path = tmp_path / "scene.jpg"
    image.save(path, quality=85)
    noisy = np.asarray(image).astype(np.int16) + np.random.default_rng(0).integers(-6, 7, (96, 96, 3))
    for source in (path, np.clip(noisy, 0, 255).astype(np.uint8)):
        id_map = segments_from_pixels(source, max_segments=8)
        assert assert_contract(id_map, 8, covers_all=True) == len(SCENE) + 1
        for mask in masks:
            segment = id_map == np.bincount(id_map[mask]).argmax()
            assert (segment & mask).sum() / (segment | mask).sum() > 0.85


def test_pixel_segments_of_easy_vqa_pngs_are_background_and_shape(easy_vqa_paths):
    """easy-VQA draws one shape in an exact palette colour over a random near-white background, with 1-2 pixel
    anti-aliased edges of blended colours: those must not become segments of their own."""
    from modeling_ashnets.data.easy_vqa import shape_mask

    for path in easy_vqa_paths:
        pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 2  # the edges really are blended
        id_map = segments_from_pixels(path, max_segments=8)
        assert assert_contract(id_map, 8, covers_all=True) == 2
        generous = shape_mask(path)  # every pixel far from the background's colour, blended edges included
        pixels = pixels.reshape(64, 64, 3)
        colors, counts = np.unique(pixels[generous], axis=0, return_counts=True)
        core = (pixels == colors[counts.argmax()]).all(axis=-1)  # the pixels of the shape's exact colour
        shape = id_map == 1
        assert not (core & ~shape).any() and not (shape & ~generous).any()


def test_pixel_segments_reject_bad_arguments():
    image, _ = draw_scene()
    with pytest.raises(ValueError, match="color_tolerance"):
        segments_from_pixels(image, 8, color_tolerance=0)
    with pytest.raises(ValueError, match="max_segments"):
        segments_from_pixels(image, 0)
    with pytest.raises(FileNotFoundError):
        segments_from_pixels("/nonexistent/scene.png", 8)


# --- superpixel_segments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["slic", "felzenszwalb"])
def test_superpixels_cover_every_pixel_within_max_segments(easy_vqa_paths, method):
    scene, _ = draw_scene()
    for image in (easy_vqa_paths[0], easy_vqa_paths[1], scene):
        for max_segments in (1, 8, 16):
            id_map = superpixel_segments(image, max_segments, method=method)
            assert_contract(id_map, max_segments, covers_all=True)
            width, height = Image.open(image).size if isinstance(image, str) else image.size
            assert id_map.shape == (height, width)


def test_superpixels_merge_by_color_so_segments_follow_the_shapes():
    """After merging by colour, nearly every pixel lies in a segment mostly made of its own shape (or background)."""
    image, _ = draw_scene()
    truth = segments_from_pixels(image, 8)
    id_map = superpixel_segments(image, 16)
    table = np.zeros((id_map.max() + 1, truth.max() + 1), dtype=np.int64)
    np.add.at(table, (id_map.ravel(), truth.ravel()), 1)
    assert table.max(axis=1).sum() / id_map.size > 0.97
    assert superpixel_segments(image, 16, n_segments=32, compactness=20).max() < 16  # options reach skimage


def test_superpixels_reject_unknown_methods():
    with pytest.raises(ValueError, match="Unknown superpixel method 'quickshift'.*slic.*felzenszwalb"):
        superpixel_segments(np.zeros((8, 8, 3), dtype=np.uint8), 4, method="quickshift")


# --- COCO panoptic ----------------------------------------------------------------------------------------------


def write_panoptic_png(segment_ids: np.ndarray, path) -> None:
    rgb = np.stack([segment_ids % 256, segment_ids // 256 % 256, segment_ids // 256**2], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def test_coco_panoptic_round_trip(tmp_path):
    segment_ids = np.zeros((20, 30), dtype=np.int64)  # 0: void
    segment_ids[:, :12] = 3_000_000  # uses the blue channel
    segment_ids[:10, 12:] = 70_000
    segment_ids[10:, 12:20] = 258  # red 2, green 1
    segment_ids[10:15, 25:] = 7
    info = [{"id": 3_000_000, "category_id": 184}, {"id": 70_000, "category_id": 1},
            {"id": 258, "category_id": 44}, {"id": 7, "category_id": 18}, {"id": 99, "category_id": 5}]
    path = tmp_path / "000000000139.png"
    write_panoptic_png(segment_ids, path)
    id_map, categories = read_coco_panoptic(path, info)
    assert assert_contract(id_map, 10) == 4
    order = [3_000_000, 70_000, 258, 7]  # by decreasing area: 240, 180, 80, 25 pixels
    for index, original in enumerate(order):
        np.testing.assert_array_equal(id_map == index, segment_ids == original)
    np.testing.assert_array_equal(id_map == -1, segment_ids == 0)
    assert categories == [184, 1, 44, 18]
    merged, merged_categories = read_coco_panoptic(path, info, max_segments=2)
    assert assert_contract(merged, 2) == 2 and merged_categories == [184, 1]
    np.testing.assert_array_equal(merged == -1, segment_ids == 0)  # void stays void; no segment pixel is lost
    assert read_coco_panoptic(Image.open(path))[1] is None


def test_coco_panoptic_needs_the_matching_segments_info(tmp_path):
    segment_ids = np.array([[1, 1, 2], [0, 2, 2]])
    path = tmp_path / "panoptic.png"
    write_panoptic_png(segment_ids, path)
    with pytest.raises(ValueError, match=r"segment ids \[2\] that segments_info does not list"):
        read_coco_panoptic(path, [{"id": 1, "category_id": 1}])


# --- a transformers panoptic model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_mask2former():
    """A randomly initialised Mask2Former small enough for CPU tests, and its image processor, built offline."""
    from transformers import (
        AutoModelForUniversalSegmentation,
        Mask2FormerConfig,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    torch.manual_seed(0)
    backbone = SwinConfig(image_size=64, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                               encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2,
                               num_attention_heads=2, num_queries=6, num_labels=5)
    model = AutoModelForUniversalSegmentation.from_config(config).eval()
    processor = Mask2FormerImageProcessor(size={"shortest_edge": 64, "longest_edge": 128}, size_divisor=32)
    return model, processor


def test_panoptic_model_segments_contract(tiny_mask2former, easy_vqa_paths):
    model, processor = tiny_mask2former
    scene, _ = draw_scene()
    images = [easy_vqa_paths[0], scene.resize((80, 48)), np.asarray(scene)]
    # A random model is unsure of everything: thresholds of 0 keep its segments, so the contract has something to check.
    loose = dict(threshold=0.0, mask_threshold=0.0, overlap_mask_area_threshold=0.0)
    id_maps = panoptic_model_segments(images, model, processor, max_segments=8, batch_size=2, **loose)
    assert [id_map.shape for id_map in id_maps] == [(64, 64), (48, 80), (96, 96)]
    counts = [assert_contract(id_map, 8) for id_map in id_maps]
    assert max(counts) >= 2
    limited = panoptic_model_segments(images, model, processor, max_segments=1, **loose)
    for id_map, full in zip(limited, id_maps):
        assert assert_contract(id_map, 1) == min(1, full.max() + 1)
        np.testing.assert_array_equal(id_map == -1, full == -1)  # merging keeps every labelled pixel
    # one image in, a list of one out; images of one size need no padding, so batching changes nothing
    single = panoptic_model_segments(images[2], model, processor, max_segments=8, **loose)
    assert len(single) == 1
    same_size = panoptic_model_segments([images[2], scene], model, processor, max_segments=8, **loose)
    np.testing.assert_array_equal(same_size[0], single[0])
    np.testing.assert_array_equal(same_size[1], single[0])
    # at the default threshold the random model is sure of nothing: its pixels stay unlabelled (-1)
    strict = panoptic_model_segments(images[:1], model, processor, max_segments=8)[0]
    assert strict.shape == (64, 64) and strict.dtype == np.int64 and (strict == -1).all()


def test_panoptic_model_segments_rejects_a_processor_without_panoptic_post_processing(tiny_mask2former):
    from modeling_ashnets import AshNetsImageProcessor

    model, _ = tiny_mask2former
    with pytest.raises(ValueError, match="no post_process_panoptic_segmentation"):
        panoptic_model_segments([np.zeros((8, 8, 3), dtype=np.uint8)], model, AshNetsImageProcessor(), 4)


# --- resize_segment_ids and compute_segments --------------------------------------------------------------------


def test_resize_segment_ids_keeps_ids_in_numpy_and_torch():
    id_map = np.array([[0, 1, -1], [2, 2, 1]], dtype=np.int64)
    up = resize_segment_ids(id_map, (4, 6))
    np.testing.assert_array_equal(up, np.repeat(np.repeat(id_map, 2, axis=0), 2, axis=1))
    tensor = resize_segment_ids(torch.from_numpy(id_map), (4, 6))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.int64
    np.testing.assert_array_equal(tensor.numpy(), up)
    np.testing.assert_array_equal(resize_segment_ids(up, (2, 3)), id_map)  # down again
    scene_ids = segments_from_pixels(draw_scene()[0], 8)
    odd = resize_segment_ids(scene_ids, (37, 53))
    assert odd.shape == (37, 53) and set(np.unique(odd)) <= set(np.unique(scene_ids))
    batch = resize_segment_ids(torch.stack([torch.from_numpy(id_map)] * 3), (4, 6))
    assert batch.shape == (3, 4, 6)


def test_resize_segment_ids_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"size must be \(height, width\)"):
        resize_segment_ids(np.zeros((4, 4), dtype=np.int64), 8)
    with pytest.raises(ValueError, match=r"size must be \(height, width\)"):
        resize_segment_ids(np.zeros((4, 4), dtype=np.int64), (0, 8))
    with pytest.raises(ValueError, match="integer ids"):
        resize_segment_ids(torch.zeros(4, 4), (8, 8))
    with pytest.raises(ValueError, match=r"\(\.\.\., height, width\)"):
        resize_segment_ids(np.zeros(4, dtype=np.int64), (8, 8))


def test_compute_segments_dispatches_and_names_the_sources(easy_vqa_paths):
    np.testing.assert_array_equal(compute_segments(easy_vqa_paths[0], "pixels", 8),
                                  segments_from_pixels(easy_vqa_paths[0], 8))
    np.testing.assert_array_equal(compute_segments(easy_vqa_paths[0], "superpixels", 8, method="felzenszwalb"),
                                  superpixel_segments(easy_vqa_paths[0], 8, method="felzenszwalb"))
    with pytest.raises(ValueError, match=r"Unknown segment source 'sam'; choose one of \('pixels', 'superpixels'\)"):
        compute_segments(easy_vqa_paths[0], "sam", 8)
    with pytest.raises(ValueError, match="panoptic_model_segments"):
        compute_segments(easy_vqa_paths[0], "panoptic", 8)
    assert SEGMENT_SOURCES == ("pixels", "superpixels")
