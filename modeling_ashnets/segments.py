"""Segment id maps: the visual tokens of GSHN are image segments, each pooling the CNN feature map under its mask.

Every source here returns the same convention, so the model never cares where segments came from: an int64 array
(H, W) whose pixels hold their segment's index 0..k-1 (contiguous, k <= max_segments) or -1 (`NO_SEGMENT`) for
pixels in no segment. Segments are ordered by decreasing area (index 0 = largest, ties by first pixel in raster
order), so truncating to fewer nodes drops the smallest.

Sources: flat-colour synthetic images (`segments_from_pixels`), superpixels of any image (`superpixel_segments`),
COCO panoptic annotations (`read_coco_panoptic`) and a transformers panoptic model (`panoptic_model_segments`).
Any other integer label map is brought into the convention by `limit_segments`.
"""

import heapq
import math

import numpy as np
from scipy import ndimage

from .image_inputs import to_rgb_image


__all__ = [
    "NO_SEGMENT",
    "SEGMENT_SOURCES",
    "SUPERPIXEL_METHODS",
    "compute_segments",
    "limit_segments",
    "panoptic_model_segments",
    "read_coco_panoptic",
    "resize_segment_ids",
    "segments_from_pixels",
    "superpixel_segments",
]

NO_SEGMENT = -1
# The sources `compute_segments` runs on one image; the panoptic model takes batches (`panoptic_model_segments`).
SEGMENT_SOURCES = ("pixels", "superpixels")
SUPERPIXEL_METHODS = ("slic", "felzenszwalb")
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


# --- checks -----------------------------------------------------------------------------------------------------


def _check_max_segments(max_segments, allow_none: bool = False) -> None:
    if max_segments is None and allow_none:
        return
    if isinstance(max_segments, bool) or not isinstance(max_segments, (int, np.integer)) or max_segments < 1:
        raise ValueError(f"max_segments must be an integer >= 1, got {max_segments!r}.")


def _is_tensor(value) -> bool:
    return hasattr(value, "detach") and hasattr(value, "cpu")  # torch.Tensor, without importing torch here


def _label_array(id_map, name: str = "id_map") -> np.ndarray:
    """A 2-D integer numpy array from an array, tensor or nested list, or a ValueError saying what is wrong."""
    array = id_map.detach().cpu().numpy() if _is_tensor(id_map) else np.asarray(id_map)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (height, width) label map, got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must hold integer labels, got dtype {array.dtype}; convert it with .astype(np.int64) "
            "(or .long() for a tensor)."
        )
    return array


def _rgb_array(image) -> np.ndarray:
    """(H, W, 3) uint8 from a path, PIL image, array or tensor (`to_rgb_image` decides what is accepted)."""
    return np.asarray(to_rgb_image(image))


# --- relabelling and merging ------------------------------------------------------------------------------------


def _dense_labels(labels: np.ndarray, ignore_value) -> tuple[np.ndarray, int]:
    """Arbitrary labels -> ids 0..k-1 in any order and -1 for `ignore_value`, with k."""
    keep = np.ones(labels.shape, dtype=bool) if ignore_value is None else labels != ignore_value
    dense = np.full(labels.shape, NO_SEGMENT, dtype=np.int64)
    values, inverse = np.unique(labels[keep], return_inverse=True)
    dense[keep] = inverse.reshape(-1)
    return dense, len(values)


def _order_by_area(labels: np.ndarray) -> np.ndarray:
    """Ids (any non-negative values, -1 none) -> contiguous 0..k-1 by decreasing area, ties by first pixel."""
    flat = labels.reshape(-1)
    inside = np.flatnonzero(flat >= 0)
    ordered = np.full(flat.shape, NO_SEGMENT, dtype=np.int64)
    if inside.size == 0:
        return ordered.reshape(labels.shape)
    _, first, inverse, counts = np.unique(flat[inside], return_index=True, return_inverse=True, return_counts=True)
    rank = np.empty(len(counts), dtype=np.int64)
    rank[np.lexsort((first, -counts))] = np.arange(len(counts))
    ordered[inside] = rank[inverse.reshape(-1)]
    return ordered.reshape(labels.shape)


def _borders(labels: np.ndarray, count: int) -> list[dict[int, int]]:
    """For each segment, its 4-connected neighbours and the length of the border shared with each."""
    pairs = [(labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])]
    first = np.concatenate([a.reshape(-1) for a, _ in pairs])
    second = np.concatenate([b.reshape(-1) for _, b in pairs])
    touching = (first >= 0) & (second >= 0) & (first != second)
    low, high = np.minimum(first, second)[touching], np.maximum(first, second)[touching]
    keys, lengths = np.unique(low * count + high, return_counts=True)
    neighbours = [{} for _ in range(count)]
    for key, length in zip(keys.tolist(), lengths.tolist()):
        a, b = divmod(key, count)
        neighbours[a][b] = neighbours[b][a] = length
    return neighbours


class _SegmentGraph:
    """Segments as nodes, shared borders as weighted edges; merging keeps both up to date.

    Why a graph rather than relabelling the image after each merge: merging hundreds of superpixels would
    otherwise cost a pass over every pixel per merge."""

    def __init__(self, labels: np.ndarray, count: int, colors: np.ndarray | None = None):
        self.labels, self.count = labels, count
        inside = labels >= 0
        self.areas = np.bincount(labels[inside], minlength=count).astype(np.int64)
        self.neighbours = _borders(labels, count)
        self.parent = np.arange(count)
        self.alive = count
        self.version = [0] * count
        self.color_sums, self.means = None, None
        if colors is not None:
            channels = colors.shape[-1]
            self.color_sums = np.stack(
                [np.bincount(labels[inside], colors[inside][:, c], minlength=count) for c in range(channels)], axis=1
            )
            # tuples: the colour merge compares hundreds of pairs per image, and math.dist on tuples is over 10x faster
            # than numpy on 3-element arrays
            self.means = [tuple(row) for row in (self.color_sums / np.maximum(self.areas, 1)[:, None]).tolist()]

    def is_root(self, segment: int) -> bool:
        return self.parent[segment] == segment

    def absorb(self, target: int, source: int) -> None:
        """Segment `source` becomes part of `target`."""
        for neighbour, length in self.neighbours[source].items():
            if neighbour == target:
                continue
            self.neighbours[target][neighbour] = self.neighbours[target].get(neighbour, 0) + length
            other = self.neighbours[neighbour]
            other[target] = other.get(target, 0) + other.pop(source)
        self.neighbours[target].pop(source, None)
        self.neighbours[source] = {}
        self.areas[target] += self.areas[source]
        if self.color_sums is not None:
            self.color_sums[target] += self.color_sums[source]
            self.means[target] = tuple((self.color_sums[target] / self.areas[target]).tolist())
        self.parent[source] = target
        self.version[target] += 1
        self.version[source] += 1
        self.alive -= 1

    def current_labels(self) -> np.ndarray:
        roots = self.parent.copy()
        while True:
            following = roots[roots]
            if np.array_equal(following, roots):
                break
            roots = following
        return np.where(self.labels >= 0, roots[np.maximum(self.labels, 0)], NO_SEGMENT)

    def best_neighbour(self, segment: int) -> int | None:
        """The neighbour with the longest shared border (ties: the larger, then the lower id); for a segment that
        touches no other (islands inside ignored pixels) the segment nearest to it, or None if it is alone."""
        if self.neighbours[segment]:
            return max(self.neighbours[segment], key=lambda n: (self.neighbours[segment][n], self.areas[n], -n))
        current = self.current_labels()
        others = (current >= 0) & (current != segment)
        if not others.any():
            return None
        distances, (rows, columns) = ndimage.distance_transform_edt(~others, return_indices=True)
        closest = np.argmin(np.where(current == segment, distances, np.inf))
        return int(current[rows.reshape(-1)[closest], columns.reshape(-1)[closest]])


def _merge_by_border(graph: _SegmentGraph, max_segments: int | None, keep: np.ndarray | None = None) -> None:
    """Smallest first, each segment merges into the neighbour it shares the longest border with, until at most
    `max_segments` remain and every one left is marked in `keep` (segments not kept merge whatever their count)."""
    keep = np.ones(graph.count, dtype=bool) if keep is None else keep.copy()
    limit = graph.count if max_segments is None else max_segments
    heap = [(bool(keep[s]), int(graph.areas[s]), s) for s in range(graph.count) if graph.is_root(s)]
    heapq.heapify(heap)
    while heap:
        kept, area, segment = heapq.heappop(heap)
        if not graph.is_root(segment) or area != graph.areas[segment] or kept != keep[segment]:
            continue  # stale entry
        if kept and graph.alive <= limit:
            break
        target = graph.best_neighbour(segment)
        if target is None:
            continue  # the only segment left
        graph.absorb(target, segment)
        keep[target] |= keep[segment]
        heapq.heappush(heap, (bool(keep[target]), int(graph.areas[target]), target))


def _merge_by_color(graph: _SegmentGraph, max_segments: int) -> None:
    """Repeatedly merge the adjacent pair of most similar mean colour (the smaller into the larger) until at most
    `max_segments` remain: flat regions cut into several superpixels join before distinct objects do."""

    def entry(a: int, b: int) -> tuple:
        distance = math.dist(graph.means[a], graph.means[b])
        return (distance, min(a, b), max(a, b), graph.version[a], graph.version[b])

    heap = [entry(a, b) for a in range(graph.count) for b in graph.neighbours[a] if a < b]
    heapq.heapify(heap)
    while heap and graph.alive > max_segments:
        _, a, b, version_a, version_b = heapq.heappop(heap)
        if version_a != graph.version[a] or version_b != graph.version[b]:
            continue  # stale: one of the two has merged since (an absorbed segment's version changes too)
        target, source = (a, b) if (graph.areas[a], -a) >= (graph.areas[b], -b) else (b, a)
        graph.absorb(target, source)
        for neighbour in graph.neighbours[target]:
            heapq.heappush(heap, entry(target, neighbour))


def limit_segments(id_map, max_segments: int | None, ignore_value: int | None = NO_SEGMENT) -> np.ndarray:
    """Any integer label map (COCO's RGB ids, skimage labels, a model's output) -> the segment id convention.

    Pixels equal to `ignore_value` (default -1, so the output can be fed back in; None: every value is a segment)
    become -1. While more than `max_segments` segments remain (None: no limit), the smallest merges into the
    neighbour it shares the longest border with, so no pixel is lost; a segment touching no other merges into the
    nearest one. Equal labels form one segment even where they are not connected."""
    labels = _label_array(id_map)
    _check_max_segments(max_segments, allow_none=True)
    dense, count = _dense_labels(labels, ignore_value)
    if max_segments is not None and count > max_segments:
        graph = _SegmentGraph(dense, count)
        _merge_by_border(graph, max_segments)
        dense = graph.current_labels()
    return _order_by_area(dense)


# --- flat-colour images -----------------------------------------------------------------------------------------


def _interior(labels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose 8 neighbours (edge pixels repeated at the image border) all share their label."""
    height, width = labels.shape
    padded = np.pad(labels, 1, mode="edge")
    inside = np.ones(labels.shape, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            inside &= padded[dy:dy + height, dx:dx + width] == labels
    return inside


def _flat_colors(rgb: np.ndarray, tolerance: int) -> np.ndarray:
    """(P, 3) float: the colours of the image's flat regions, most common first.

    A quantised colour counts when some pixel's whole 3x3 neighbourhood has it: anti-aliased edges and noise
    specks are one or two pixels wide and never do, however many pixels share their colour. A colour within
    `tolerance` of a commoner one (a flat colour split across quantisation bins by noise) is dropped."""
    bins = (rgb // tolerance).astype(np.int64)
    side = 256 // tolerance + 1
    keys = (bins[..., 0] * side + bins[..., 1]) * side + bins[..., 2]
    interior = _interior(keys)
    if not interior.any():  # smaller than 3x3 or no flat region at all: count every pixel
        interior[:] = True
    values, inverse, counts = np.unique(keys[interior], return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    pixels = rgb[interior].astype(np.float64)
    means = np.stack([np.bincount(inverse, pixels[:, c], minlength=len(values)) for c in range(3)], 1)
    means /= counts[:, None]
    palette = []
    for index in np.argsort(-counts, kind="stable"):
        if all(np.abs(means[index] - kept).max() > tolerance for kept in palette):
            palette.append(means[index])
    return np.array(palette)


def _nearest_color(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W) index of each pixel's nearest palette colour: blended edge pixels go to the closer side."""
    distances = ((rgb.astype(np.float64)[:, :, None, :] - palette[None, None]) ** 2).sum(axis=-1)
    return distances.argmin(axis=-1)


def segments_from_pixels(image, max_segments: int, color_tolerance: int = 24) -> np.ndarray:
    """Segments of a flat-colour synthetic image (easy-VQA, drawn shape scenes): the background (the most
    frequent colour, wherever it is) is one segment, each 8-connected component of another colour one segment.

    Real images are not flat: use `superpixel_segments` for them. Colours are matched by `_flat_colors` and every
    pixel takes its nearest flat colour, which absorbs anti-aliasing (easy-VQA's shapes have blended 1-2 pixel
    edges over a random near-white background) and noise up to about `color_tolerance` per channel. Components
    with no 3x3 block of their own (stray edge pixels, specks of a few pixels) merge into the neighbour they share
    the longest border with, so shapes must be at least 3 pixels across; beyond `max_segments`, the smallest
    segments merge the same way. Two shapes of one colour touching at a corner form one segment."""
    _check_max_segments(max_segments)
    if isinstance(color_tolerance, bool) or not isinstance(color_tolerance, int) or not 1 <= color_tolerance <= 255:
        raise ValueError(f"color_tolerance must be an integer from 1 to 255, got {color_tolerance!r}.")
    rgb = _rgb_array(image)
    colors = _nearest_color(rgb, _flat_colors(rgb, color_tolerance))
    background = np.bincount(colors.reshape(-1)).argmax()
    labels = np.zeros(colors.shape, dtype=np.int64)  # 0: the background
    count = 1
    for color in np.unique(colors):
        if color != background:
            components, found = ndimage.label(colors == color, structure=_EIGHT_NEIGHBOURS)
            labels[components > 0] = components[components > 0] + count - 1
            count += found
    keep = np.zeros(count, dtype=bool)
    keep[np.unique(labels[_interior(labels)])] = True
    keep[0] = True
    graph = _SegmentGraph(labels, count)
    _merge_by_border(graph, max_segments, keep)
    return _order_by_area(graph.current_labels())


# --- superpixels ------------------------------------------------------------------------------------------------


def _superpixels(rgb: np.ndarray, method: str, max_segments: int, options: dict) -> np.ndarray:
    from skimage import segmentation

    if method == "slic":
        # 4 superpixels per final segment leave the colour merge room to follow object boundaries (on drawn
        # scenes at max_segments=8, 3 per segment lost 1 % more pixels to mixed segments); 5 k-means iterations
        # instead of skimage's 10 save about 40 % of SLIC's time with no measurable loss on 64-96 pixel images.
        settings = dict(n_segments=4 * max_segments, compactness=10.0, max_num_iter=5, start_label=0)
        settings.update(options)
        return segmentation.slic(rgb, channel_axis=-1, **settings)
    settings = dict(scale=100.0, sigma=0.5, min_size=20)
    settings.update(options)
    return segmentation.felzenszwalb(rgb, channel_axis=-1, **settings)


def superpixel_segments(image, max_segments: int, method: str = "slic", **method_options) -> np.ndarray:
    """Segments of any image without a segmentation model: scikit-image superpixels, merged down to at most
    `max_segments`. Every pixel belongs to a segment.

    `method` is "slic" (default: n_segments = 4 * max_segments, compactness 10, max_num_iter 5) or
    "felzenszwalb" (scale 100, sigma 0.5, min_size 20); `method_options` override these and are passed to the
    scikit-image function. Merging joins the adjacent pair with the most similar mean colour (CIELAB) first, so
    the background's superpixels join before an object's do; the smaller of the two joins the larger."""
    from skimage.color import rgb2lab

    _check_max_segments(max_segments)
    if method not in SUPERPIXEL_METHODS:
        raise ValueError(f"Unknown superpixel method {method!r}; choose one of {SUPERPIXEL_METHODS}.")
    rgb = _rgb_array(image)
    labels, count = _dense_labels(_superpixels(rgb, method, max_segments, method_options), None)
    graph = _SegmentGraph(labels, count, colors=rgb2lab(rgb))
    _merge_by_color(graph, max_segments)
    _merge_by_border(graph, max_segments)  # only if the colour merge ran out of adjacent pairs
    return _order_by_area(graph.current_labels())


# --- COCO panoptic annotations ----------------------------------------------------------------------------------


def read_coco_panoptic(png, segments_info=None, max_segments: int | None = None):
    """A COCO panoptic annotation PNG (segment id = R + 256 G + 256^2 B; 0 = void) -> (id map, category ids).

    Void pixels become -1. `segments_info` is the annotation JSON's list for this image; with it, the second
    value lists the `category_id` of each output segment (of its largest original segment, where `max_segments`
    merged several), and an id in the PNG missing from the list is an error. Without it, the second value is None.
    """
    _check_max_segments(max_segments, allow_none=True)
    rgb = _rgb_array(png).astype(np.int64)
    segment_ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
    id_map = limit_segments(segment_ids, max_segments, ignore_value=0)
    if segments_info is None:
        return id_map, None
    categories = {int(info["id"]): int(info["category_id"]) for info in segments_info}
    missing = sorted(set(np.unique(segment_ids).tolist()) - set(categories) - {0})
    if missing:
        raise ValueError(
            f"The panoptic PNG has segment ids {missing[:5]} that segments_info does not list: pass the "
            "segments_info of the same image (the annotation's 'segments_info')."
        )
    category_ids = []
    for segment in range(int(id_map.max()) + 1):
        originals, counts = np.unique(segment_ids[id_map == segment], return_counts=True)
        category_ids.append(categories[int(originals[np.argmax(counts)])])
    return id_map, category_ids


# --- transformers panoptic models -------------------------------------------------------------------------------


def _crop_padding(outputs, index: int, pixel_mask):
    """Image `index`'s outputs with its mask logits cut to the image's own region: the processor pads a batch to
    its largest image, and the post-processing would otherwise stretch the padding over the target size."""
    class_logits = outputs.class_queries_logits[index:index + 1]
    mask_logits = outputs.masks_queries_logits[index:index + 1]
    if pixel_mask is not None:
        padded_height, padded_width = pixel_mask.shape[-2:]
        valid = pixel_mask[index].bool()
        height = math.ceil(int(valid.any(dim=1).sum()) * mask_logits.shape[-2] / padded_height)
        width = math.ceil(int(valid.any(dim=0).sum()) * mask_logits.shape[-1] / padded_width)
        mask_logits = mask_logits[..., :height, :width]
    return type(outputs)(class_queries_logits=class_logits, masks_queries_logits=mask_logits)


def _model_inputs(images, model, image_processor) -> dict:
    inputs = {"images": images, "return_tensors": "pt"}
    if getattr(model.config, "model_type", None) == "oneformer":
        inputs["task_inputs"] = ["panoptic"] * len(images)  # OneFormer runs one model for three tasks
    encoded = image_processor(**inputs)
    if "task_inputs" in encoded and not hasattr(encoded["task_inputs"], "to"):
        raise ValueError(
            "OneFormer reads its task as token ids: pass its OneFormerProcessor (image processor and tokenizer) as "
            "image_processor, not the OneFormerImageProcessor alone."
        )
    moved = {name: value.to(model.device) for name, value in encoded.items() if hasattr(value, "to")}
    moved["pixel_values"] = moved["pixel_values"].to(model.dtype)
    return moved


def panoptic_model_segments(
    images, model, image_processor, max_segments: int, threshold: float = 0.5, batch_size: int = 8,
    **post_process_options,
) -> list[np.ndarray]:
    """Segments from a transformers universal-segmentation model (Mask2Former, MaskFormer; OneFormer with its
    OneFormerProcessor, which tokenises the task): one id map per image, at the image's own size.

    `images` is one image or a list (paths, PIL images, arrays). `threshold` and `post_process_options`
    (mask_threshold, overlap_mask_area_threshold, label_ids_to_fuse) go to the processor's
    `post_process_panoptic_segmentation`. Pixels the model leaves unlabelled stay -1 rather than being merged
    into a neighbour: they are what the model found no segment for. Beyond `max_segments`, `limit_segments` merges.
    """
    import torch

    _check_max_segments(max_segments)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    if not hasattr(image_processor, "post_process_panoptic_segmentation"):
        raise ValueError(
            f"image_processor ({type(image_processor).__name__}) has no post_process_panoptic_segmentation: pass "
            "the image processor of a panoptic model such as Mask2FormerImageProcessor."
        )
    images = list(images) if isinstance(images, (list, tuple)) else [images]
    post_process_options.setdefault("label_ids_to_fuse", set())  # also silences transformers' warning
    id_maps = []
    for start in range(0, len(images), batch_size):
        batch = [to_rgb_image(image) for image in images[start:start + batch_size]]
        inputs = _model_inputs(batch, model, image_processor)
        with torch.inference_mode():
            outputs = model(**inputs)
        for index, image in enumerate(batch):
            result = image_processor.post_process_panoptic_segmentation(
                _crop_padding(outputs, index, inputs.get("pixel_mask")), threshold=threshold,
                target_sizes=[(image.height, image.width)], **post_process_options,
            )[0]
            segmentation = result["segmentation"].cpu().numpy().astype(np.int64)
            found = [info["id"] for info in result["segments_info"]]
            segmentation[~np.isin(segmentation, found)] = NO_SEGMENT
            id_maps.append(limit_segments(segmentation, max_segments))
    return id_maps


# --- resizing and the entry point -------------------------------------------------------------------------------


def resize_segment_ids(id_map, size):
    """Nearest-neighbour resize of an id map (..., H, W) to `size` = (height, width), e.g. the model's input
    size. Each output pixel takes the id under its centre, so ids and -1 are kept exactly (no interpolation
    between ids). A torch tensor comes back as a tensor on its device, anything else as a numpy array."""
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(side, int) and not isinstance(side, bool) and side >= 1 for side in size)):
        raise ValueError(f"size must be (height, width) with two integers >= 1, got {size!r}.")
    tensor = _is_tensor(id_map)
    array = id_map if tensor else np.asarray(id_map)
    if array.ndim < 2:
        raise ValueError(f"id_map must be (..., height, width), got shape {tuple(array.shape)}.")
    if (array.is_floating_point() or array.is_complex()) if tensor else not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"id_map must hold integer ids, got dtype {array.dtype}.")
    (height, width), (new_height, new_width) = array.shape[-2:], size
    rows = ((np.arange(new_height) + 0.5) * height / new_height).astype(np.int64).clip(0, height - 1)
    columns = ((np.arange(new_width) + 0.5) * width / new_width).astype(np.int64).clip(0, width - 1)
    if tensor:
        import torch

        rows, columns = torch.from_numpy(rows).to(array.device), torch.from_numpy(columns).to(array.device)
    return array[..., rows[:, None], columns[None, :]]


def compute_segments(image, source: str, max_segments: int, **options) -> np.ndarray:
    """One image's segment id map from `source`: "pixels" (`segments_from_pixels`, flat-colour synthetic
    images) or "superpixels" (`superpixel_segments`, any image); `options` go to that function."""
    sources = {"pixels": segments_from_pixels, "superpixels": superpixel_segments}
    if source not in sources:
        hint = " The panoptic model takes batches: call panoptic_model_segments." if source == "panoptic" else ""
        raise ValueError(f"Unknown segment source {source!r}; choose one of {SEGMENT_SOURCES}.{hint}")
    return sources[source](image, max_segments, **options)
