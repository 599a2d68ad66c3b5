import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_batch
from modeling_ashnets import AshNetsImageProcessor, AshNetsImageProcessorTorchvision, AshNetsProcessor
from transformers import AutoProcessor, AutoTokenizer, BertTokenizer


def pixel_tensor(image_processor, image):
    """pixel_values as a tensor (image processors, as transformers' own, return lists unless asked)."""
    return image_processor(image, return_tensors="pt")["pixel_values"]


def test_real_sentence_is_not_unknown(tokenizer):
    ids = tokenizer("what color is the triangle in the image?")["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.convert_ids_to_tokens(ids)[:4] == ["[CLS]", "what", "color", "is"]


def test_processor_outputs(processor, easy_vqa_samples):
    batch = make_batch(processor, easy_vqa_samples)
    assert batch["pixel_values"].shape == (4, 3, 64, 64)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape
    assert batch["input_ids"][:, 0].eq(101).all()  # [CLS]
    plain = processor(images=[s[0] for s in easy_vqa_samples], text=[s[1] for s in easy_vqa_samples])
    assert isinstance(plain["input_ids"], list) and isinstance(plain["pixel_values"], list)  # tensors when asked


def test_text_defaults_give_way_to_the_tokenizer_and_the_call(processor, minilm_path):
    """Padding to the longest and truncation to 40 tokens are defaults: the tokenizer's own settings, then the call's
    arguments, win (transformers' order). The bundled tokenizer's own config says max_length=128."""
    long_text = "x " * 200
    no_settings = BertTokenizer(os.path.join(minilm_path, "vocab.txt"))  # the same vocabulary, no max_length of its own
    plain = AshNetsProcessor(processor.image_processor, no_settings)
    assert plain(text=long_text, return_tensors="pt")["input_ids"].shape == (1, 40)
    assert plain(text=["a", "a b c"], return_tensors="pt")["input_ids"].shape == (2, 5)
    assert processor(text=long_text, return_tensors="pt")["input_ids"].shape == (1, 128)
    assert processor(text=long_text, max_length=16, return_tensors="pt")["input_ids"].shape == (1, 16)
    assert processor(text=["a"], text_kwargs={"padding": "max_length", "max_length": 8},
                     common_kwargs={"return_tensors": "pt"})["input_ids"].shape == (1, 8)


def test_training_processors_and_old_checkpoints_truncate_at_40(processor, tmp_path):
    """The training scripts give the tokenizer max_length=40 (saved with it); processors saved before the tokenizer's
    settings took precedence recorded `max_text_length` and keep truncating there."""
    from modeling_ashnets.training import MAX_TEXT_LENGTH, default_tokenizer_path

    long_text = "x " * 200
    trained = AshNetsProcessor(processor.image_processor,
                               AutoTokenizer.from_pretrained(default_tokenizer_path(), max_length=MAX_TEXT_LENGTH))
    trained.save_pretrained(tmp_path / "new")
    assert len(AshNetsProcessor.from_pretrained(tmp_path / "new")(text=long_text)["input_ids"][0]) == 40
    processor.save_pretrained(tmp_path / "old")  # the bundled tokenizer says 128; an old config said 40
    config_file = tmp_path / "old" / "processor_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "max_text_length": 40}))
    assert len(AshNetsProcessor.from_pretrained(tmp_path / "old")(text=long_text)["input_ids"][0]) == 40


def test_nlvr2_pairs(processor, easy_vqa_samples):
    paths = [s[0] for s in easy_vqa_samples]
    batch = processor(images=[(paths[0], paths[1]), (paths[2], paths[3])], text=["left is red", "both are circles"],
                      return_tensors="pt")
    assert batch["pixel_values"].shape == (2, 2, 3, 64, 64)
    single = pixel_tensor(processor.image_processor, paths[3])
    torch.testing.assert_close(batch["pixel_values"][1, 1], single[0])
    with pytest.raises(ValueError, match="exactly two images"):
        processor.image_processor([(paths[0],), (paths[1], paths[2])])
    with pytest.raises(ValueError, match="Mixed single images"):
        processor.image_processor([paths[0], (paths[1], paths[2])])


def rgb_reference(image):
    return pixel_tensor(AshNetsImageProcessor(size={"height": 32, "width": 32}), image.convert("RGB"))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1"])
def test_image_modes_are_converted(photo, mode):
    image = photo.convert(mode)
    pixels = pixel_tensor(AshNetsImageProcessor(size={"height": 32, "width": 32}), image)
    assert pixels.shape == (1, 3, 32, 32) and torch.isfinite(pixels).all()
    if mode in ("L", "P", "CMYK", "1"):
        torch.testing.assert_close(pixels, rgb_reference(image))


def test_transparency_is_composited_on_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    pixels = pixel_tensor(AshNetsImageProcessor(size={"height": 8, "width": 8}, do_normalize=False), image)
    torch.testing.assert_close(pixels, torch.ones(1, 3, 8, 8))


def test_transparent_palette_is_composited_on_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    palette = rgba.convert("P")  # an RGBA palette, no "transparency" key
    pixels = pixel_tensor(AshNetsImageProcessor(size={"height": 8, "width": 8}, do_normalize=False, resample=0), palette)
    torch.testing.assert_close(pixels[0, :, 4, 4], torch.ones(3))  # transparent red -> white
    torch.testing.assert_close(pixels[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))


def test_do_convert_rgb_false_keeps_the_images_own_channels(tmp_path):
    path = tmp_path / "transparent.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(path)
    processor = AshNetsImageProcessor(size={"height": 8, "width": 8}, do_normalize=False)
    assert pixel_tensor(processor, str(path)).shape == (1, 3, 8, 8)  # composited on white by default
    kept = processor(str(path), do_convert_rgb=False, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(kept[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0, 0.0]))  # still decoded from the path


def test_channels_first_tensors_even_when_tiny():
    red = torch.zeros(3, 4, 4, dtype=torch.uint8)
    red[0] = 255
    pixels = pixel_tensor(AshNetsImageProcessor(size={"height": 4, "width": 4}, do_normalize=False), red)
    torch.testing.assert_close(pixels[0, :, 1, 1], torch.tensor([1.0, 0.0, 0.0]))


def test_raising_the_pixel_limit_above_pil_default(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 40), (10, 20, 30)).save(path)
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, 1_000  # 1,600 pixels: over PIL's limit, under 2x
    try:
        pixels = pixel_tensor(AshNetsImageProcessor(size={"height": 8, "width": 8}, max_image_pixels=10_000), str(path))
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    assert pixels.shape == (1, 3, 8, 8)


def test_tokenizer_arguments_reach_the_tokenizer(processor):
    plain = processor(text="is it red?", add_special_tokens=False, return_token_type_ids=False)
    assert "token_type_ids" not in plain
    assert plain["input_ids"][0][0] != 101  # no [CLS]


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    array = np.full((16, 16), 65535 // 2, dtype=np.uint16)
    path = tmp_path / "depth.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    processor = AshNetsImageProcessor(size={"height": 16, "width": 16}, do_normalize=False)
    pixels = pixel_tensor(processor, str(path))
    torch.testing.assert_close(pixels, torch.full((1, 3, 16, 16), 128 / 255), atol=2 / 255, rtol=0)
    torch.testing.assert_close(pixel_tensor(processor, array), pixels)
    low = np.full((16, 16), 200, dtype=np.uint16)  # a dark 16-bit value stays dark for file and array alike
    Image.fromarray(low).save(tmp_path / "dark.png")
    torch.testing.assert_close(pixel_tensor(processor, str(tmp_path / "dark.png")), pixel_tensor(processor, low))


def test_array_tensor_bytes_and_path_inputs_agree(photo, tmp_path):
    processor = AshNetsImageProcessor(size={"height": 32, "width": 32})
    path = tmp_path / "photo.png"
    photo.save(path)
    reference = pixel_tensor(processor, photo)
    array = np.asarray(photo)
    for variant in (str(path), path, path.read_bytes(), array, array.transpose(2, 0, 1), torch.from_numpy(array), array / 255.0):
        torch.testing.assert_close(pixel_tensor(processor, variant), reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "image, error, message",
    [
        (np.zeros((0, 5, 3), dtype=np.uint8), ValueError, "zero size"),
        (Image.new("RGB", (0, 4)), ValueError, "zero size"),
        (b"definitely not a png", ValueError, "Cannot decode"),
        (b"", ValueError, "empty bytes"),
        (np.full((4, 4, 3), 2.0), ValueError, r"must lie in \[0, 1\]"),
        (np.full((4, 4, 3), np.nan), ValueError, "NaN"),
        (np.zeros((5, 5, 7), dtype=np.uint8), ValueError, r"must be \(H, W\), \(H, W, C\) or \(C, H, W\)"),
        (np.zeros((4, 4), dtype=np.int64), ValueError, "Unsupported image array dtype"),
        (12345, TypeError, "Unsupported image type int"),
        ([], ValueError, "empty list of images"),
    ],
)
def test_bad_images_raise_clear_errors(image, error, message):
    with pytest.raises(error, match=message):
        AshNetsImageProcessor(size={"height": 8, "width": 8})(image)


def test_missing_and_corrupt_files(tmp_path, easy_vqa_samples):
    processor = AshNetsImageProcessor(size={"height": 8, "width": 8})
    with pytest.raises(FileNotFoundError, match="nope.png"):
        processor(str(tmp_path / "nope.png"))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(open(easy_vqa_samples[0][0], "rb").read()[:200])
    with pytest.raises(ValueError, match="Cannot decode the image file .*truncated.png"):
        processor(str(truncated))


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (4000, 3000)).save(path)  # 12 MP, but the header is all that is read before refusing
    with pytest.raises(ValueError, match="over the limit of 1000000"):
        AshNetsImageProcessor(max_image_pixels=1_000_000)(str(path))
    with pytest.raises(ValueError, match="decompression bomb"):
        Image.MAX_IMAGE_PIXELS, saved = 1_000, Image.MAX_IMAGE_PIXELS
        try:
            AshNetsImageProcessor()(str(path))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def test_text_errors(processor, easy_vqa_samples):
    path = easy_vqa_samples[0][0]
    with pytest.raises(ValueError, match=r"Empty text at batch position\(s\) \[1\]"):
        processor(images=[path, path], text=["is it red?", "   "])
    with pytest.raises(ValueError, match="Batch sizes differ: 1 texts but 2 images"):
        processor(images=[path, path], text=["is it red?"])
    with pytest.raises(TypeError, match="text must be a string or a list of strings"):
        processor(text=[1, 2])
    with pytest.raises(ValueError, match="Pass images, text or both"):
        processor()


def test_torchvision_twin_agrees_with_pil(photo):
    pil = pixel_tensor(AshNetsImageProcessor(size={"height": 48, "width": 48}), photo)
    twin = pixel_tensor(AshNetsImageProcessorTorchvision(size={"height": 48, "width": 48}), photo)
    assert twin.shape == pil.shape
    assert (twin - pil).abs().mean() < 0.02  # resize kernels differ slightly between PIL and torchvision


def test_processor_save_and_load(processor, tmp_path, easy_vqa_samples):
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path, backend="pil")
    assert isinstance(reloaded, AshNetsProcessor) and isinstance(reloaded.image_processor, AshNetsImageProcessor)
    expected, got = make_batch(processor, easy_vqa_samples), make_batch(reloaded, easy_vqa_samples)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    assert "auto_map" not in processor.to_dict()  # saving does not leave remote-code state behind
