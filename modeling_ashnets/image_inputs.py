"""Turning whatever a user passes as an image into a checked RGB PIL image, with errors that say what to fix.

Accepted: a path, raw encoded bytes, a PIL image, or a uint8 / uint16 / float-in-[0, 1] array or tensor
(HW, HWC or CHW). Grayscale, alpha, palette, CMYK and 16-bit images are converted to 8-bit RGB.
`load_image_reference` also takes what pipelines and HTTP payloads carry: a URL, a base64 string or a data URI.
"""

import base64
import binascii
import io
import os
import urllib.request
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError


__all__ = ["DEFAULT_MAX_IMAGE_BYTES", "DEFAULT_MAX_IMAGE_PIXELS", "decode_image", "flatten_image_batch",
           "load_image_reference", "to_rgb_image"]

# PIL's own decompression-bomb threshold (about 89.5 megapixels).
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
# Largest encoded image accepted from a URL, base64 string or data URI.
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"image file {os.fspath(source)!r}"
    return f"image ({type(source).__name__})"


def _open(source, max_pixels: int) -> Image.Image:
    what = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"The {what} does not exist.")
        stream = source
    else:
        if len(source) == 0:
            raise ValueError("Got empty bytes instead of an encoded image.")
        stream = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below decides; PIL still refuses beyond twice Image.MAX_IMAGE_PIXELS.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
            _check_size(image.size, max_pixels, what)
            image.load()
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"The {what} is too large to decode safely (decompression bomb): {error} To accept it, raise both "
            "max_image_pixels and PIL.Image.MAX_IMAGE_PIXELS."
        ) from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot decode the {what}: it is not a readable image ({error}).") from error
    return image


def _check_size(size: tuple[int, int], max_pixels: int, what: str) -> None:
    width, height = size
    if width == 0 or height == 0:
        raise ValueError(f"The {what} has zero size ({width}x{height}).")
    if width * height > max_pixels:
        raise ValueError(
            f"The {what} has {width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
            "(a guard against decompression bombs): downscale it first or raise max_image_pixels."
        )


def _array_to_image(array: np.ndarray, channels_first: bool = False) -> Image.Image:
    """channels_first: torch tensors are CHW by convention, numpy arrays HWC; an array whose preferred layout
    does not fit (no 1/3/4 channels there) is read the other way."""
    if 0 in array.shape:
        raise ValueError(f"The image array has zero size (shape {tuple(array.shape)}).")
    if array.ndim == 3:
        first, last = array.shape[0] in (1, 3, 4), array.shape[-1] in (1, 3, 4)
        if first and (channels_first or not last):
            array = np.moveaxis(array, 0, -1)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"An image array must be (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; got shape {array.shape}."
        )
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("The image array contains NaN or infinite values.")
        if array.min() < 0 or array.max() > 1:
            raise ValueError(
                f"A float image array must lie in [0, 1], got values from {array.min():.3g} to {array.max():.3g}; "
                "pass uint8 for 0-255 images."
            )
        array = (array * 255.0).round().astype(np.uint8)
    else:
        raise ValueError(f"Unsupported image array dtype {array.dtype}; use uint8, uint16 or float in [0, 1].")
    return Image.fromarray(np.ascontiguousarray(array))


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit ('I;16*'), 32-bit int ('I') and float ('F') grayscale -> 8-bit 'L', scaling rather than clipping.

    16-bit modes always map 0..65535 to 0..255 (as uint16 arrays do); 'I' and 'F' carry no bit depth, so values
    above 255 are read as 16-bit and float values up to 1 as [0, 1]."""
    array = np.asarray(image, dtype=np.float32)
    if image.mode.startswith("I;16"):
        array = array / 257.0
    elif image.mode == "F" and array.size and array.max() <= 1.0:
        array = array * 255.0
    elif image.mode == "I" and array.size and array.max() > 255:
        array = array / 257.0
    return Image.fromarray(np.clip(array, 0, 255).round().astype(np.uint8), mode="L")


def _is_tensor(image) -> bool:
    return hasattr(image, "detach") and hasattr(image, "cpu")  # torch.Tensor, without importing torch here


def decode_image(image, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
    """A path or encoded bytes -> the decoded PIL image, its mode and channels untouched; a PIL image, array or
    tensor is returned as it is. Enough for `do_convert_rgb=False`, where the image's own channels are kept."""
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)):
        return _open(image if not isinstance(image, memoryview) else image.tobytes(), max_pixels)
    if not isinstance(image, (Image.Image, np.ndarray)) and not _is_tensor(image):
        raise TypeError(
            f"Unsupported image type {type(image).__name__}: pass a path, encoded bytes, a PIL image, "
            "a numpy array or a torch tensor."
        )
    return image


def to_rgb_image(image, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """Any accepted image input -> a decoded 8-bit RGB PIL image. Transparent pixels are composited on white."""
    image = decode_image(image, max_pixels)
    if _is_tensor(image):
        image = _array_to_image(image.detach().cpu().numpy(), channels_first=True)
    elif isinstance(image, np.ndarray):
        image = _array_to_image(image)
    _check_size(image.size, max_pixels, _describe(image))
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _high_bit_depth_to_l(image)
    if image.mode == "P":
        transparent = "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
        image = image.convert("RGBA" if transparent else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def flatten_image_batch(images) -> tuple[list, int | None]:
    """Returns (flat list of images, images per sample): 1 image per sample, or 2 for NLVR2 pairs.

    Accepted: one image; a list of images; a list of pairs (lists or tuples of two images).
    """
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError("Got an empty list of images.")
        nested = [isinstance(item, (list, tuple)) for item in images]
        if all(nested):
            lengths = {len(item) for item in images}
            if lengths != {2}:
                raise ValueError(
                    f"Nested image lists must be NLVR2 pairs of exactly two images each, got lengths {sorted(lengths)}."
                )
            return [image for pair in images for image in pair], 2
        if any(nested):
            raise ValueError("Mixed single images and image lists in one batch: pass all singles or all pairs.")
        return list(images), 1
    return [images], 1


def load_image_reference(
    image, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, timeout: float = 10.0
) -> Image.Image:
    """An image given as a path, an http(s) URL, a base64 string, a `data:image/...;base64,` URI, encoded bytes, a
    PIL image, an array or a tensor -> a checked RGB PIL image. Encoded inputs over `max_bytes` are refused."""
    if isinstance(image, str):
        if image.startswith(("http://", "https://")):
            image = _download(image, max_bytes, timeout)
        elif os.path.isfile(image):
            return to_rgb_image(image, max_pixels)
        else:
            image = _decode_base64(image, max_bytes)
    if isinstance(image, (bytes, bytearray)) and len(image) > max_bytes:
        raise ValueError(f"The encoded image has {len(image)} bytes, over the limit of {max_bytes}.")
    return to_rgb_image(image, max_pixels)


def _decode_base64(text: str, max_bytes: int) -> bytes:
    payload = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    if len(payload) > max_bytes * 4 // 3 + 4:
        raise ValueError(f"The base64 image is over the limit of {max_bytes} bytes.")
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        shown = text if len(text) < 60 else text[:57] + "..."
        raise ValueError(
            f"The image {shown!r} is neither an existing file, an http(s) URL, nor base64 data: check the path."
        ) from None


def _download(url: str, max_bytes: int, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except OSError as error:
        raise ValueError(f"Cannot download the image {url}: {error}.") from error
    if len(data) > max_bytes:
        raise ValueError(f"The image at {url} is over the limit of {max_bytes} bytes.")
    return data
