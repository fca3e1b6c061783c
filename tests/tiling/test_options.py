import argparse
import math

import pytest
import torch

from tiling import options as o


@pytest.mark.parametrize(
    ("check", "raw", "value"),
    [
        (o.positive_int, "8", 8),
        (o.positive_int, 3, 3),
        (o.positive_int, 4.0, 4),
        (o.non_negative_int, "0", 0),
        (o.integer, "-3", -3),
        (o.probability, "0", 0.0),
        (o.probability, "1", 1.0),
        (o.probability, 0.3, 0.3),
        (o.positive_float, "1e-3", 1e-3),
        (o.non_negative_float, 0, 0.0),
        (o.text, "data/images", "data/images"),
        (o.token, 32, "32"),
        (o.flag, "yes", True),
        (o.flag, False, False),
        (o.optional(o.positive_float), "none", None),
        (o.optional(o.positive_float), None, None),
        (o.list_of(o.text), "[a, b]", ["a", "b"]),
        (o.list_of(o.text), "a,b", ["a", "b"]),
        (o.list_of(o.text), "[]", []),
        (o.list_of(o.text), "", []),
        (o.list_of(o.non_negative_float), [0.7, "0.3"], [0.7, 0.3]),
        (o.mapping(o.text, o.text), "{x: X_IMAGE}", {"x": "X_IMAGE"}),
        (o.mapping(o.text, o.text), {}, {}),
        (o.device, "cpu", "cpu"),
    ],
)
def test_accepted_values(check, raw, value):
    assert check(raw) == value


@pytest.mark.parametrize(
    ("check", "raw", "message"),
    [
        (o.positive_int, "0", r"'0' is not a positive whole number; give 1 or more"),
        (o.positive_int, "-2", "give 1 or more"),
        (o.positive_int, "8.5", r"'8.5' is not a whole number"),
        (o.positive_int, "eight", r"'eight' is not a whole number"),
        (o.positive_int, True, "is not a whole number"),
        (o.positive_int, "inf", "is not a whole number"),
        (o.non_negative_int, "-1", r"'-1' is negative; give 0 or more"),
        (o.probability, "nan", r"'nan' is not a number between 0 and 1"),
        (o.probability, "1.5", "between 0 and 1"),
        (o.probability, -0.1, "between 0 and 1"),
        (o.positive_float, "0", "is not a finite number above 0"),
        (o.positive_float, "inf", "is not a finite number above 0"),
        (o.non_negative_float, "nan", "is not a finite number of 0 or more"),
        (o.text, 5, "is not text; write it in quotes"),
        (o.flag, "maybe", "is not true or false"),
        (o.list_of(o.text), "{a: 1}", "is not a list"),
        (o.list_of(o.non_negative_float), "[1, x]", "'x' is not a number"),
        (o.mapping(o.text, o.text), "[1, 2]", "is not a mapping"),
        (o.mapping(o.text, o.text), "{x: [", "is not valid YAML"),
        (o.device, "gpu7", r"unknown device 'gpu7'; use cpu, cuda, cuda:<index> or mps"),
        (o.device, "meta", "is not available here"),
    ],
)
def test_refused_values(check, raw, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        check(raw)


def test_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        argparse.ArgumentTypeError, match="no CUDA GPU is available on this machine; use cpu"
    ):
        o.device("cuda")


def test_a_gpu_index_beyond_the_count_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert o.device("cuda:1") == "cuda:1"
    with pytest.raises(argparse.ArgumentTypeError, match=r"has 2 GPU\(s\), cuda:0 to cuda:1"):
        o.device("cuda:2")


def test_read_yaml_reads_exponent_numbers_as_floats(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-3\nbig: 2E+4\nname: 1e-3x\nplain: 0.5\nlist: [1e-4, 3e-4]\n")
    data = o.read_yaml(path)
    assert data == {"lr": 1e-3, "big": 2e4, "name": "1e-3x", "plain": 0.5, "list": [1e-4, 3e-4]}
    assert all(isinstance(v, float) for v in (data["lr"], data["big"], *data["list"]))
    assert not math.isnan(data["lr"])
