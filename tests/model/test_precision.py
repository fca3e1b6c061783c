import pytest
import torch

from model import precision as prec
from model.config import ModelConfig
from model.inference.predict import predict_raster
from model.precision import autocast, cpu_flags, cpu_has_bf16, device_type, resolve_precision
from model.run_config import RunConfig
from model.training.trainer import build_trainer
from tests.conftest import write_geotiff
from tests.model.fakes import DiscDetector, square_image
from tiling.errors import ConfigError

SAPPHIRE_RAPIDS = "fpu vme sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
COOPER_LAKE = "fpu sse2 avx2 avx512f avx512_bf16"
EPYC_ZEN2 = "fpu sse2 avx avx2 fma sha_ni"


def write_cpuinfo(folder, flags):
    """A two-processor /proc/cpuinfo with ``flags``."""
    block = f"processor\t: {{}}\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n\n"
    path = folder / "cpuinfo"
    path.write_text(block.format(0) + block.format(1))
    return path


@pytest.fixture
def fake_cpu(tmp_path, monkeypatch):
    """Factory: make model.precision read ``flags`` as this machine's, with no GPU visible."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def use(flags):
        monkeypatch.setattr(prec, "CPUINFO", write_cpuinfo(tmp_path, flags))

    return use


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    path = write_cpuinfo(tmp_path, SAPPHIRE_RAPIDS)
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= cpu_flags(path)
    assert cpu_has_bf16(path)
    assert not cpu_has_bf16(write_cpuinfo(tmp_path, EPYC_ZEN2))
    assert cpu_flags(tmp_path / "missing") == frozenset()  # macOS, Windows: no file, no flags


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(SAPPHIRE_RAPIDS, "bf16-mixed"), (COOPER_LAKE, "bf16-mixed"), (EPYC_ZEN2, "32")],
)
def test_auto_on_the_cpu_follows_its_flags(fake_cpu, flags, expected):
    fake_cpu(flags)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", "auto") == expected  # no GPU: auto is the CPU


def test_auto_on_a_gpu_asks_torch_for_bf16(fake_cpu, monkeypatch):
    fake_cpu(EPYC_ZEN2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert device_type("auto") == "cuda" and device_type("cuda:1") == "cuda"
    assert resolve_precision("auto", "auto") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") == "32"  # the CPU is still an old one
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)  # e.g. a V100
    assert resolve_precision("auto", "gpu") == "32"
    assert resolve_precision("auto", "mps") == "32"


def test_explicit_precisions_are_kept_and_bad_ones_named(fake_cpu):
    fake_cpu(EPYC_ZEN2)
    for name in ("32", "16-mixed", "bf16-mixed"):
        assert resolve_precision(name, "cpu") == name
    with pytest.raises(ConfigError, match=r"precision='64' is invalid: expected one of \['auto'"):
        resolve_precision("64")
    assert RunConfig(precision="auto").precision == "auto"
    assert resolve_precision(32, "cpu") == "32"  # papermill's -p precision 32 is an int


def test_autocast_context(fake_cpu):
    fake_cpu(EPYC_ZEN2)
    with autocast("cpu", "auto"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("cpu", "bf16-mixed"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    fake_cpu(SAPPHIRE_RAPIDS)
    with autocast(torch.device("cpu"), "auto"):
        assert torch.is_autocast_enabled("cpu")


def test_trainer_resolves_auto(fake_cpu, tmp_path):
    fake_cpu(SAPPHIRE_RAPIDS)
    config, run = ModelConfig(), RunConfig(accelerator="cpu", precision="auto")
    trainer = build_trainer(config, tmp_path, run=run, enable_progress_bar=False)
    assert trainer.precision == "bf16-mixed"
    fake_cpu(EPYC_ZEN2)
    assert (
        build_trainer(config, tmp_path, run=run, enable_progress_bar=False).precision == "32-true"
    )


class AutocastProbe(DiscDetector):
    """DiscDetector that records whether each forward ran under CPU autocast."""

    def __init__(self):
        super().__init__()
        self.autocast = []

    def forward(self, images):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return super().forward(images)


def test_prediction_runs_under_the_resolved_precision(fake_cpu, tmp_path):
    path = write_geotiff(tmp_path / "r.tif", square_image(64, [(5, 5, 6), (40, 30, 8)]))
    options = {"tile_size": 32, "overlap": 8, "batch_size": 4, "progress": False}
    fake_cpu(SAPPHIRE_RAPIDS)
    model = AutocastProbe()
    bf16 = predict_raster(model, path, **options)
    assert model.autocast and all(model.autocast)
    fake_cpu(EPYC_ZEN2)
    model = AutocastProbe()
    fp32 = predict_raster(model, path, **options)
    assert model.autocast and not any(model.autocast)
    assert len(bf16) == len(fp32) == 2
