import json

import pytest

from augment import D4, NAMED_RECIPES, Compose, build_transform, recipe_to_dict
from augment.recipe import AUTO_COPY_PASTE_BELOW, auto_recipe
from tiling.errors import ConfigError

CUSTOM = {
    "name": "compose",
    "transforms": [
        {"name": "d4", "symmetries": [0, 3]},
        {"name": "random_apply", "p": 0.25, "transform": {"name": "rotate", "max_degrees": 5}},
        {
            "name": "one_of",
            "weights": [2, 1],
            "transforms": [
                {"name": "noise"},
                {"name": "stretch", "max_low": 1.0, "per_band": False},
            ],
        },
    ],
}


@pytest.mark.parametrize("recipe", [*NAMED_RECIPES, CUSTOM])
def test_recipe_dict_round_trip(recipe):
    as_dict = recipe_to_dict(recipe)
    text = json.dumps(as_dict)
    again = recipe_to_dict(json.loads(text))
    assert again == as_dict
    assert build_transform(json.loads(text)) == build_transform(recipe)


def test_named_recipes_and_defaults_filled_in():
    assert build_transform("flips") == D4(symmetries=(0, 1, 2, 3))
    assert build_transform("none").to_dict() == {"name": "identity"}
    full = recipe_to_dict(CUSTOM)
    assert full["transforms"][1]["transform"] == {
        "name": "rotate",
        "max_degrees": 5,
        "min_visible": 0.5,
    }
    assert full["transforms"][2]["transforms"][0]["per_band"] is True
    t = Compose([D4()])
    assert build_transform(t) is t
    names = [c["name"] for c in recipe_to_dict("default")["transforms"]]
    assert names[0] == "d4" and len(names) == 7


def test_recipe_errors():
    with pytest.raises(ConfigError, match=r"unknown augmentation recipe 'strong'.*'default'"):
        build_transform("strong")
    with pytest.raises(ConfigError, match=r"unknown transform name 'zoom'.*'crop_zoom'"):
        build_transform({"name": "zoom"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['scale'\].*allowed keys"):
        build_transform({"name": "crop_zoom", "scale": 2})
    with pytest.raises(ConfigError, match="must be a name or a dict, got int"):
        build_transform(3)
    with pytest.raises(ConfigError, match="children must be recipe dicts"):
        build_transform({"name": "compose", "transforms": ["d4"]})
    with pytest.raises(ConfigError, match="bad parameters for transform 'd4'"):
        build_transform({"name": "d4", "symmetries": 5})
    with pytest.raises(ConfigError, match="0 < min_scale <= max_scale"):
        build_transform({"name": "crop_zoom", "min_scale": 2.0})


def test_auto_recipe_pastes_objects_for_small_training_sets_only():
    assert auto_recipe(0) == auto_recipe(AUTO_COPY_PASTE_BELOW - 1) == "copy_paste"
    assert auto_recipe(AUTO_COPY_PASTE_BELOW) == auto_recipe(10**6) == "default"
    with pytest.raises(ConfigError, match=r"resolve it first with augment\.recipe\.auto_recipe"):
        build_transform("auto")
