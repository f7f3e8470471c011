"""Image features: the offline EfficientNet-Lite0, an HF vision model, the content-hash cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import core.images as images
from core.images import (
    DEFAULT_IMAGE_ENCODER,
    ImageFeatureError,
    feature_cache_dir,
    image_features,
    image_sha256,
    resolve_image,
)


def draw_images(folder) -> tuple[str, str]:
    """Two clearly different pictures: a red square on white and random noise."""
    folder.mkdir(parents=True, exist_ok=True)
    red = Image.new("RGB", (300, 200), "white")
    red.paste((220, 20, 20), (60, 40, 240, 160))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (180, 260, 3), dtype=np.uint8))
    red.save(folder / "red.png")
    noise.save(folder / "noise.jpg", quality=90)
    return str(folder / "red.png"), str(folder / "noise.jpg")


def test_default_encoder_gives_pooled_1280_features_that_depend_on_the_image(lb_env, tmp_path):
    red, noise = draw_images(tmp_path / "pics")
    feats = image_features([red, noise, red])
    assert feats.shape == (3, 1280) and feats.dtype == np.float32
    assert np.all(np.isfinite(feats)) and np.all(feats >= 0)  # ReLU6 activations, averaged
    assert not np.allclose(feats[0], feats[1])
    np.testing.assert_array_equal(feats[0], feats[2])


def test_feature_cache_is_hit_by_content_hash(lb_env, tmp_path, monkeypatch):
    red, _ = draw_images(tmp_path / "pics")
    first = image_features([red])
    sha = image_sha256(tmp_path / "pics" / "red.png")
    cached = feature_cache_dir() / f"{sha}.npy"
    assert cached.is_file()
    assert cached.parent == lb_env / "cache" / "image_features" / DEFAULT_IMAGE_ENCODER

    def no_model(*args, **kwargs):
        raise AssertionError("the encoder was loaded although the features are cached")

    monkeypatch.setattr(images, "load_image_encoder", no_model)
    copy = tmp_path / "elsewhere" / "same.png"  # same bytes under another name: same cache entry
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "pics" / "red.png").read_bytes())
    np.testing.assert_array_equal(image_features([str(copy)])[0], first[0])
    np.testing.assert_array_equal(image_features([sha])[0], first[0])  # a bare hash reference


def test_images_resolve_from_the_media_store(lb_env, tmp_path):
    red, _ = draw_images(tmp_path / "pics")
    sha = image_sha256(tmp_path / "pics" / "red.png")
    stored = lb_env / "media" / sha[:2] / f"{sha}.png"
    stored.parent.mkdir(parents=True)
    stored.write_bytes((tmp_path / "pics" / "red.png").read_bytes())
    assert resolve_image(sha) == stored
    assert resolve_image(f"{sha[:2]}/{sha}.png") == stored
    with pytest.raises(ImageFeatureError, match="not found"):
        resolve_image("nope.png")
    with pytest.raises(ImageFeatureError, match="URL"):
        resolve_image("https://example.org/cat.jpg")


def test_broken_image_is_reported_with_its_path(lb_env, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageFeatureError, match="broken.png"):
        image_features([str(bad)])


def test_any_hf_vision_model_can_be_the_encoder(lb_env, tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path / "tiny-vit"
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48
    )
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    red, noise = draw_images(tmp_path / "pics")
    feats = image_features([red, noise], str(folder))
    assert feats.shape == (2, 24)
    assert not np.allclose(feats[0], feats[1])
    assert feature_cache_dir(str(folder)) != feature_cache_dir()  # one cache folder per encoder
    assert len(list(feature_cache_dir(str(folder)).glob("*.npy"))) == 2
