"""The drawn garments that replace Fashion-MNIST: seeded, varied, and told apart by their shape."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.data.builtin.garments import GARMENT_CLASSES, draw_garment, garment_set


def test_the_same_seed_draws_the_same_garments_and_another_seed_others():
    images, labels = garment_set(60, seed=0)
    again, again_labels = garment_set(60, seed=0)
    other, _ = garment_set(60, seed=1)
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    assert not np.array_equal(images, other)
    assert sorted(np.bincount(labels, minlength=10).tolist()) == [6] * 10  # balanced


def test_no_two_garments_of_a_class_are_alike():
    images, labels = garment_set(100, seed=0)
    shirts = images[labels == GARMENT_CLASSES.index("shirt")].reshape(10, -1).astype(int)
    diffs = [np.abs(a - b).mean() for i, a in enumerate(shirts) for b in shirts[i + 1:]]
    assert min(diffs) > 1.0


def test_classes_are_told_apart_by_shape_far_above_chance():
    """A nearest-centroid classifier fitted on one seed's garments labels another seed's: the
    classes must differ in shape, not only in name (chance is 10%)."""
    train, train_labels = garment_set(400, seed=0)
    test, test_labels = garment_set(200, seed=1)
    binary = lambda x: (x.reshape(len(x), -1) > 30).astype(np.float32)  # noqa: E731 - shape, not tone
    centroids = np.stack([binary(train)[train_labels == k].mean(0) for k in range(10)])
    predicted = ((binary(test)[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == test_labels).mean() > 0.6


def test_an_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown garment class"):
        draw_garment("hat", random.Random(0))
