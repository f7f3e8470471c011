"""Image fusion in the student: the image is a prefix token; items without one still work."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import Item, Sentence, make_span
from core.student import TrainConfig, load_student, predict_details, save_student, train_student
from tests.test_images import draw_images
from tests.test_student import make_tiny_encoder


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert-img"))


def items_with_images(red: str, noise: str) -> list[Item]:
    """The same words mean a person next to the red picture and a place next to the noise."""
    items = []
    for i in range(12):
        sentence = Sentence.from_words(["anna", "met", "us", "."])
        label, image = ("PER", red) if i % 2 == 0 else ("LOC", noise)
        items.append(Item(f"i{i}", sentence, target=sentence, target_spans=[make_span(sentence, 0, 1, label)], image=image))
    plain = Sentence.from_words(["bob", "met", "us", "."])
    items.append(Item("plain", plain, target=plain, target_spans=[make_span(plain, 0, 1, "PER")]))  # no image
    return items


@pytest.mark.parametrize("finetune", [False, True], ids=["frozen-encoder", "finetuned-encoder"])
def test_fused_student_trains_and_reads_the_image(lb_env, tmp_path, tiny_encoder, finetune):
    red, noise = draw_images(tmp_path / "pics")
    config = TrainConfig(
        encoder=tiny_encoder, image_encoder="efficientnet-lite0", finetune_encoder=finetune, epochs=8,
        learning_rate=3e-3, head_learning_rate=1e-2 if finetune else 3e-3, batch_size=4, device="cpu", seed=3, warmup_ratio=0.0, threads=1,
    )  # fmt: skip
    student = train_student(items_with_images(red, noise), (), config)
    assert student.image_dim == 1280
    losses = [h["loss"] for h in student.history]
    assert losses[-1] < losses[0]  # the fused model trains

    text = Sentence.from_words(["anna", "met", "us", "."])
    with_red, with_noise, without = predict_details(student, [text, text, text], [red, noise, None])
    assert not np.allclose(with_red.probs, with_noise.probs, atol=1e-4)  # same text, other picture
    assert without.probs.shape == with_red.probs.shape  # no image: the learned null vector
    assert np.allclose(without.probs.sum(axis=1), 1.0, atol=1e-4)

    save_student(student, tmp_path / "fused")
    loaded = load_student(tmp_path / "fused", device="cpu")
    again = predict_details(loaded, [text, text], [red, None])
    np.testing.assert_allclose(again[0].probs, with_red.probs, atol=1e-5)
    np.testing.assert_allclose(again[1].probs, without.probs, atol=1e-5)
