import pytest

from model.config import ModelConfig
from model.precision import resolve_precision
from model.run_config import RUN_FIELDS, RunConfig
from tiling.errors import ConfigError


def test_defaults_and_normalised_values():
    run = RunConfig(precision=32, devices=(0, 1))
    assert (run.precision, run.devices) == ("32", [0, 1])
    assert RunConfig().trainer_precision == "32"
    # auto follows this machine (bf16 with AMX/AVX-512 BF16): faked flags in test_precision.py
    assert RunConfig(precision="auto").trainer_precision == resolve_precision("auto", "auto")
    assert RunConfig(precision="bf16-mixed").trainer_precision == "bf16-mixed"
    assert RUN_FIELDS == (
        "accelerator",
        "devices",
        "strategy",
        "num_nodes",
        "num_workers",
        "precision",
    )
    assert not set(RUN_FIELDS) & {f for f in ModelConfig().to_dict()}  # none of them in the model


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"precision": "64"}, r"RunConfig.precision='64'.*'auto', '32', '16-mixed', 'bf16-mixed'"),
        ({"accelerator": "tpu"}, r"accelerator='tpu'.*'cpu'"),
        ({"devices": 0}, r"devices=0.*a count >= 1"),
        ({"devices": []}, r"devices=\[\]"),
        ({"devices": [0, -1]}, r"devices=\[0, -1\]"),
        ({"devices": True}, r"devices=True"),
        ({"strategy": "horovod"}, r"strategy='horovod'.*ddp"),
        ({"num_nodes": 0}, r"num_nodes=0.*an integer >= 1"),
        ({"num_workers": -1}, r"num_workers=-1.*an integer >= 0"),
        ({"num_workers": "2"}, r"num_workers='2'.*a string, not a number"),
    ],
)
def test_invalid_values_name_field_value_and_allowed(changes, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**changes)


def test_valid_device_forms():
    assert RunConfig(devices=-1).devices == -1
    assert RunConfig(devices=2, strategy="ddp_spawn", accelerator="cpu").devices == 2
    assert RunConfig(devices=[1]).devices == [1]
