"""Model names in every form, compared through aliases (GET /options reports whatever form was last set)."""

from __future__ import annotations

import pytest

from sdwebui import checkpoints, errors
from sdwebui.models import SDModel
from tests.conftest import fixture_json

MODELS = [SDModel.model_validate(m) for m in fixture_json("get_sd_models")]  # rand-a hashed, rand-b not yet
RAND_A, RAND_B = MODELS


@pytest.mark.parametrize(
    "name",
    ["rand-a.safetensors [17b6bb621c]", "rand-a.safetensors", "rand-a", "RAND-A", "17b6bb621c",
     "17b6bb621c7c0e48e229903f68b6a9f1af65b36aa7ac6e2a0b25a16f2b7fc4d2", "rand-a [17b6bb621c]"],
)
def test_every_form_of_a_name_finds_the_model(name):
    assert checkpoints.resolve_model(name, MODELS) is RAND_A


def test_an_unhashed_model_is_found_by_file_name():
    assert checkpoints.resolve_model("rand-b.safetensors", MODELS) is RAND_B


@pytest.mark.parametrize("active", ["rand-a.safetensors", "rand-a", "rand-a.safetensors [17b6bb621c]"])
def test_active_checkpoint_is_recognised_in_the_forms_forge_reports(active):
    assert checkpoints.is_active(active, RAND_A)
    assert not checkpoints.is_active(active, RAND_B)


def test_recorded_options_forms_match():
    assert checkpoints.is_active(fixture_json("get_options")["sd_model_checkpoint"], RAND_A)
    assert checkpoints.is_active(fixture_json("get_options_after_switch_to_b")["sd_model_checkpoint"], RAND_B)
    assert checkpoints.is_active(fixture_json("get_options_after_override")["sd_model_checkpoint"], RAND_A)


def test_unknown_model_lists_the_closest_names():
    with pytest.raises(errors.NotFound, match=r"no model named 'rand-c'.*rand-a"):
        checkpoints.resolve_model("rand-c", MODELS)


def test_sdnext_titles_without_extension():
    model = SDModel(title="sub/juggernaut [abcdef1234]", model_name="sub/juggernaut", hash="abcdef1234")
    assert checkpoints.find_model("juggernaut", [model]) is model
    assert checkpoints.is_active("sub/juggernaut [abcdef1234]", model)


def test_empty_model_list_says_where_to_put_models():
    with pytest.raises(errors.NotFound, match="models/Stable-diffusion"):
        checkpoints.resolve_model("x", [])


DUPLICATES = [SDModel.model_validate(m) for m in fixture_json("get_sd_models_same_file_in_two_folders")]


@pytest.mark.parametrize("name", ["38b3a15ec8", "38B3A15EC8", DUPLICATES[0].sha256])
def test_a_hash_shared_by_two_identical_files_is_refused_as_ambiguous(name):
    with pytest.raises(errors.InvalidInput) as raised:
        checkpoints.resolve_model(name, DUPLICATES)
    message = str(raised.value)
    assert "rand-a.safetensors [38b3a15ec8]" in message and "sub/rand-b.safetensors [38b3a15ec8]" in message
    assert "title or file name" in message


@pytest.mark.parametrize("name,index", [("rand-a", 0), ("sub/rand-b.safetensors [38b3a15ec8]", 1), ("sub_rand-b", 1),
                                        ("rand-b.safetensors", 1), ("rand-a.safetensors [38b3a15ec8]", 0)])
def test_titles_and_file_names_still_pick_one_of_two_identical_files(name, index):
    assert checkpoints.resolve_model(name, DUPLICATES) is DUPLICATES[index]
