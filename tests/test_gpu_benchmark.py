"""`benchmarks/gpu.py` runs every GPU row through the same torch code on the CPU (`--device cpu:0`) at a tiny size,
writes its JSON, and refuses a missing GPU with one `error:` line."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_row_runs_on_the_cpu_through_torch_and_is_written(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    args = ["--device", "cpu:0", "--rows", "3000", "--chunk-rows", "1000", "--dx", "24", "--dy", "16", "--fit-rows",
            "2500", "--iterations", "10", "--repeats", "2", "--json", str(out), "--no-extraction"]  # fmt: skip
    result = load().main(args)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(result))
    names = [row["name"] for row in written["rows"]]
    assert names[:4] == ["statistics (GramStats)", "statistics from a store", "lstsq", "procrustes"]
    assert any(n.startswith("paper") for n in names) and any(n.startswith("refine") for n in names)
    for row in written["rows"]:
        assert len(row["featswap_s"]) == len(row["bare_s"]) == 2
        assert 0 < row["ratio_min"] <= row["ratio_median"] and math.isfinite(row["ratio_median"])
    differences = {row["name"]: row["difference"] for row in written["rows"]}
    for name in ("statistics (GramStats)", "lstsq", "procrustes"):  # within 1e-6 of float64
        assert differences[name] is not None and differences[name] <= 1e-6, name
    assert written["device"] == "cpu:0" and written["extraction"] is None
    assert "100,000 steps" in written["rows"][4]["note"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        load().main(["--device", "cuda", "--json", str(tmp_path / "x.json")])
    assert raised.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no CUDA GPU" in err[0]
    assert not (tmp_path / "x.json").exists()
