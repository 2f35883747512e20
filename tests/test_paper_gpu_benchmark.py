"""benchmarks/paper_gpu.py runs end to end on the CPU at a tiny size (small batches, 2 of them): both networks'
bare forward passes, featswap's extraction of both over real-size JPEGs, and the JSON it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_gpu.py"


def test_the_gpu_benchmark_runs_on_the_cpu_at_a_tiny_size_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "paper_gpu.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--size", "tiny", "--batch-size", "4", "--batches", "2",
         "--workers", "0", "--precision", "bf16", "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["jpegs"]["count"] == 8 and result["jpegs"]["size"] == [500, 375]
    assert result["precision"] == "bf16" and result["batch_size"] == 4
    assert set(result["bare_images_per_s"]) == {"mobilenetv3_small_100", "resnet18"}
    assert all(v > 0 for v in result["bare_images_per_s"].values())
    slowest = min(result["bare_images_per_s"].values())
    assert 0 < result["bare_both_images_per_s"] < slowest  # both networks on every image: slower than either
    assert result["extraction_images_per_s"] == 8 / result["extraction_seconds"]
    ratio = result["extraction_images_per_s"] / result["bare_both_images_per_s"]
    assert abs(result["ratio_extraction_to_bare"] - ratio) < 1e-12
    assert f"ratio extraction / bare: {ratio:.2f}x" in done.stdout
    assert done.returncode == 0
