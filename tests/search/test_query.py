"""Live queries are checked before any model sees them: every bad upload is a clear message."""

from __future__ import annotations

import pytest

from pipeline.search import EMPTY_QUERY, Query, QueryError
from tests.search.bad_inputs import AWKWARD, NON_FINITE, UNUSABLE, write_bad_inputs


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    return write_bad_inputs(tmp_path_factory.mktemp("uploads"))


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_unusable_images_are_refused_with_a_reason(uploads, name):
    with pytest.raises(QueryError, match=UNUSABLE[name]) as info:
        Query.build(text="a cat", image=uploads[name])
    assert "image not usable" in str(info.value) and name in str(info.value)


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_awkward_images_become_upright_rgb(uploads, name):
    query = Query.build(image=uploads[name])
    assert query.image.mode == "RGB" and query.image.size == AWKWARD[name]
    assert query.modality == "image"


@pytest.mark.parametrize("text, instruction", [(None, None), ("", ""), ("   \n", "Represent the image")])
def test_empty_query_is_refused(text, instruction):
    with pytest.raises(QueryError, match="empty query") as info:
        Query.build(text=text, instruction=instruction, image="")
    assert str(info.value) == EMPTY_QUERY


def test_text_and_image_query_and_its_description(uploads):
    query = Query.build(text="  red square ", instruction=" Find it ", image=uploads["rgba.png"])
    assert query.text == "red square" and query.instruction == "Find it" and query.modality == "image+text"
    assert "rgba.png 40x30" in query.describe() and "'red square'" in query.describe()
    example = query.example()
    assert example.text == "red square" and example.image is query.image


@pytest.mark.parametrize("name", NON_FINITE)
def test_non_finite_pixels_are_cleaned_without_a_warning(uploads, name):
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would land in the server's log
        query = Query.build(image=uploads[name])
    pixels = np.asarray(query.image)
    assert query.image.mode == "RGB" and np.isfinite(pixels).all()
    assert pixels.min() == 0  # the non-finite pixels are black
