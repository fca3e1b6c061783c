"""RunParameters against main.ipynb: same names, defaults, smoke settings and call keywords.

The notebook's cells are executed with the package functions they call replaced by recorders, so
the keywords the notebook passes can be compared with those ``raster-detect tiles``/``train`` pass.
"""

import ast
import dataclasses
import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from model.config import ModelConfig
from model.parameters import SMOKE, RunParameters
from model.pretrain import pretrain_backbone
from model.ray_options import RayOptions
from model.run_config import RunConfig
from model.training.grid import run_grid
from tiling.catalog.collect import read_catalogs
from tiling.errors import ConfigError
from tiling.parameters import default_of
from tiling.store import tile_filters as tf
from tiling.store.build import build_tile_store
from tiling.store.parameters import StoreParameters

ROOT = Path(__file__).resolve().parents[2]
CELLS = ["".join(c["source"]) for c in json.loads((ROOT / "main.ipynb").read_text())["cells"]]


def notebook_parameters():
    cell = next(c for c in CELLS if c.startswith("# fmt: off") and "images_dir =" in c)
    tree = ast.parse(cell)
    return {
        n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
    }


def cell_with(text):
    return next(c for c in CELLS if text in c and not c.lstrip().startswith(("import", "from")))


def namespace(**changes):
    """The notebook's variables after the parameters (with ``changes``) and the smoke cell."""
    ns = {**notebook_parameters(), **changes}
    exec(cell_with("if smoke:"), ns)
    return ns


class Recorder:
    def __init__(self, function, result=None):
        self.signature, self.result, self.calls = inspect.signature(function), result, []

    def __call__(self, *args, **kwargs):
        self.calls.append(self.signature.bind(*args, **kwargs).arguments)
        return self.result


def test_names_and_defaults_are_the_notebooks():
    ours = {f.name: default_of(f) for f in dataclasses.fields(RunParameters)}
    theirs = notebook_parameters()
    assert sorted(ours) == sorted(theirs), "add the notebook's new parameters to RunParameters"
    assert ours == theirs


@pytest.mark.parametrize("smoke", [False, True])
def test_the_smoke_settings_are_the_notebooks(smoke):
    ns = namespace(smoke=smoke)
    params = RunParameters(smoke=smoke).resolved()
    assert {k: ns[k] for k in notebook_parameters()} == dataclasses.asdict(params)
    changed = {k for k, v in notebook_parameters().items() if ns[k] != v} - {"smoke"}
    assert changed == (set(SMOKE) if smoke else set())


@pytest.mark.parametrize("smoke", [False, True])
def test_catalogue_and_store_keywords_are_the_notebooks(smoke):
    ns = namespace(smoke=smoke)
    params = RunParameters(smoke=smoke).resolved()
    data = SimpleNamespace(catalogs={"a": "catalogue"}, rasters={"a": "a.tif"}, report=None)
    ns.update(read_catalogs=Recorder(read_catalogs, data), display=print, summarize_catalogs=print)
    exec(cell_with("= read_catalogs("), ns)
    assert ns["read_catalogs"].calls == [params.catalog_arguments()]
    ns.update(build_tile_store=Recorder(build_tile_store), tf=tf, print=lambda *a: None)
    ns["split_summary"] = lambda store: None
    exec(cell_with("= build_tile_store("), ns)
    (call,) = ns["build_tile_store"].calls
    assert [tuple(map(str, s)) for s in call.pop("sources")] == [("a.tif", "catalogue")]
    ours = params.store_arguments()
    assert list(map(repr, call.pop("tile_filters"))) == list(map(repr, ours.pop("tile_filters")))
    assert call == ours


@pytest.mark.parametrize("smoke", [False, True])
def test_grid_keywords_are_the_notebooks(smoke):
    ns = namespace(smoke=smoke, workers=7)
    params = RunParameters(smoke=smoke, workers=7).resolved()
    ns.update(ModelConfig=ModelConfig, RunConfig=RunConfig, run_grid=Recorder(run_grid))
    ns.update(RayOptions=RayOptions)
    ns.update(store="STORE", output_dir="OUT")
    exec(cell_with("= run_grid("), ns)
    (call,) = ns["run_grid"].calls
    assert (call.pop("store"), call.pop("output_dir")) == ("STORE", "OUT")
    call.update(call.pop("trainer_kwargs", {}))
    assert call == params.grid_arguments()


@pytest.mark.parametrize("smoke", [False, True])
def test_pretrain_keywords_are_the_notebooks(smoke):
    ns = namespace(smoke=smoke, pretrain_steps=5, weights="w.pt")
    params = RunParameters(smoke=smoke, pretrain_steps=5, weights="w.pt").resolved()
    ns.update(ModelConfig=ModelConfig, pretrain_backbone=Recorder(pretrain_backbone, "new.pt"))
    ns.update(store="STORE", output_dir=Path("OUT"), print=lambda *a: None)
    exec(cell_with("= pretrain_backbone("), ns)
    (call,) = ns["pretrain_backbone"].calls
    assert (call.pop("store"), call.pop("path")) == ("STORE", Path("OUT/pretrained_backbone.pt"))
    assert call == params.pretrain_arguments()
    assert call["steps"] == (0 if smoke else 5)
    assert ns["weights"] == "new.pt"  # the grid starts from the pretrained weights


def test_from_yaml_reads_any_subset_and_refuses_unknown_names(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("tile_size: 128\ngrid: {lr: [1e-3, 3e-4]}\nprecision: 32\nweights: null\n")
    params = RunParameters.from_yaml(path, output_dir="elsewhere")
    assert params.tile_size == 128 and params.grid == {"lr": [1e-3, 3e-4]}
    assert params.precision == "32" and params.weights is None and params.output_dir == "elsewhere"
    assert params.backbone == "resnet18"  # the notebook's default
    path.write_text("stride4: true\n")
    assert RunParameters.from_yaml(path).model_config().stride4 is True
    path.write_text("stride4: Auto\n")
    assert RunParameters.from_yaml(path).model_config().stride4 == "auto"
    path.write_text("stride4: sometimes\n")
    with pytest.raises(ConfigError, match=r"run.yaml: stride4: 'sometimes' is not true or false"):
        RunParameters.from_yaml(path)
    path.write_text("steps_per_trial: 300\n")
    assert RunParameters.from_yaml(path).model_config().max_steps == 300
    assert RunParameters().model_config().max_steps == "auto"  # the default budget's work
    assert RunParameters().tile_size == "auto"  # 128 or 256 px from the catalogues
    path.write_text("tile_size: AUTO\n")
    assert RunParameters.from_yaml(path).store_arguments()["tile_size"] == "auto"
    path.write_text("tile_size: -128\n")
    with pytest.raises(ConfigError, match=r"run.yaml: tile_size: -128 is not a positive"):
        RunParameters.from_yaml(path)
    path.write_text("steps_per_trial: 0\n")
    with pytest.raises(ConfigError, match=r"run.yaml: steps_per_trial: 0 is not"):
        RunParameters.from_yaml(path)
    path.write_text("tile_size: 128\nbackbon: resnet50\n")
    with pytest.raises(ConfigError, match=r"run.yaml: unknown parameter\(s\) \['backbon'\]"):
        RunParameters.from_yaml(path)
    path.write_text("grid: {lr: []}\n")
    with pytest.raises(ConfigError, match=r"run.yaml: grid: .*is empty; give a list of values"):
        RunParameters.from_yaml(path)
    path.write_text("tile_size: [\n")
    with pytest.raises(ConfigError, match=r"cannot read the run file .*run.yaml"):
        RunParameters.from_yaml(path)


def test_yaml_round_trip(tmp_path):
    params = RunParameters(tile_size=64, test_rasters=[], max_minutes_per_trial=None)
    (tmp_path / "p.yaml").write_text(params.to_yaml())
    assert RunParameters.from_yaml(tmp_path / "p.yaml") == params


def test_store_parameters_are_a_prefix_of_run_parameters():
    store = [f.name for f in dataclasses.fields(StoreParameters)]
    assert [f.name for f in dataclasses.fields(RunParameters)][: len(store)] == store
