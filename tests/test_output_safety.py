"""Nothing featswap did not write is ever deleted or overwritten, and a location it cannot write (a file where a
directory belongs, a read-only or full filesystem) is one line saying what to do, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from featswap.cli import app


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def one_error(output: str) -> str:
    """The output, which must be one line starting `error:`."""
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return " ".join(lines[0].split())


def user_files(root: Path) -> dict[str, bytes]:
    """A user's own files in `root`, and a record of their contents."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "thesis.tex").write_text("\\chapter{Results}")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "table.csv").write_text("a,b\n1,2\n")
    return contents(root)


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def extract(store: Path, weights: dict[str, Path], model: str = "tiny-resnet") -> list[str]:
    return ["extract", "--model", model, "--weights", str(weights[model]), "--data", "digits", "--store", str(store),
            "--quiet"]  # fmt: skip


def compare(out: Path, weights: dict[str, Path]) -> list[str]:
    return ["compare", "--model", "tiny-resnet", "--weights", str(weights["tiny-resnet"]), "--model",
            "tiny-inception", "--weights", str(weights["tiny-inception"]), "--data", "digits", "--solver", "lstsq",
            "--n-boot", "20", "--no-similarity", "--quiet", "--out", str(out)]  # fmt: skip


def test_a_copied_metrics_json_does_not_make_a_directory_featswaps(
    tmp_path: Path, runner: CliRunner, digits_store: Path
) -> None:
    mine = tmp_path / "paper"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"featswap_version": "0.1.0"}')
    (mine / "report.md").write_text("# my draft")
    m = tmp_path / "m.safetensors"
    assert invoke(runner, "fit", "--store", str(digits_store), "--source", "tiny-resnet", "--target", "tiny-inception",
                  "--solver", "lstsq", "--out", str(m))[0] == 0  # fmt: skip
    code, output = invoke(runner, "evaluate", "--store", str(digits_store), "--maps", str(m), "--out", str(mine))
    assert code == 2 and "featswap did not write" in one_error(output)
    assert (mine / "report.md").read_text() == "# my draft"
    code, output = invoke(
        runner, "evaluate", "--store", str(digits_store), "--maps", str(m), "--out", str(tmp_path / "e")
    )
    assert code == 0, output
    for name in ("metrics.json", "report.md", "config.toml"):  # readable by collaborators, as umask allows
        assert (tmp_path / "e" / name).stat().st_mode & 0o044 == 0o044 & ~current_umask()


def current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_directory_that_is_not_a_store_is_never_written(
    tmp_path: Path, runner: CliRunner, trained_weights: dict[str, Path]
) -> None:
    before = user_files(tmp_path / "mine")
    code, output = invoke(runner, *extract(tmp_path / "mine", trained_weights))
    assert code == 2 and "is a directory with other contents, not a featswap feature store" in one_error(output)
    assert contents(tmp_path / "mine") == before
    (tmp_path / "file.zarr").write_text("mine")
    code, output = invoke(runner, *extract(tmp_path / "file.zarr", trained_weights))
    assert code == 2 and "is a file; give a directory" in one_error(output)
    assert (tmp_path / "file.zarr").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    code, output = invoke(runner, *extract(tmp_path / "empty", trained_weights))
    assert code == 0, output  # an empty directory is fine


def test_run_directories_are_claimed_only_when_new_empty_or_featswaps(
    tmp_path: Path, runner: CliRunner, trained_weights: dict[str, Path]
) -> None:
    before = user_files(tmp_path / "mine")
    code, output = invoke(runner, *compare(tmp_path / "mine", trained_weights))
    assert code == 2 and "directory with other contents that featswap did not write" in one_error(output)
    assert contents(tmp_path / "mine") == before
    (tmp_path / "a-file").write_text("mine")
    code, output = invoke(runner, *compare(tmp_path / "a-file", trained_weights))
    assert code == 2 and "--out" in output and "is a file" in one_error(output)
    code, output = invoke(runner, *compare(tmp_path / "run", trained_weights))
    assert code == 0, output
    (tmp_path / "run" / "notes.md").write_text("my notes")  # a user's file inside a featswap run directory
    code, output = invoke(runner, *compare(tmp_path / "run", trained_weights))
    assert code == 0, output  # featswap's own directory: rewritten, the user's file kept
    assert (tmp_path / "run" / "notes.md").read_text() == "my notes"
    for args in (
        ["similarity", "--store", str(tmp_path / "run" / "features.zarr"), "--out", str(tmp_path / "mine")],
        ["evaluate", "--store", str(tmp_path / "run" / "features.zarr"), "--out", str(tmp_path / "a-file"),
         "--maps", str(next((tmp_path / "run" / "maps").iterdir()))],
        ["demo", "--out", str(tmp_path / "mine")],
    ):  # fmt: skip
        code, output = invoke(runner, *args)
        assert code == 2 and "--out" in one_error(output), args
    assert contents(tmp_path / "mine") == before


def test_the_demo_never_deletes_a_store(
    tmp_path: Path, runner: CliRunner, digits_store: Path, demo_run: tuple[Path, str, str]
) -> None:
    out = tmp_path / "demo"
    (out / "features.zarr").mkdir(parents=True)
    (out / ".featswap-run").write_text("")
    (out / "features.zarr" / "precious.npy").write_bytes(b"user data")
    code, output = invoke(runner, "demo", "--out", str(out), "--paper-iterations", "5", "--quiet")
    assert code == 2 and "is a directory with other contents, not a featswap feature store" in output
    assert (out / "features.zarr" / "precious.npy").read_bytes() == b"user data"
    assert not (out / "weights").exists()  # refused before training the networks, not after
    other = tmp_path / "other"
    other.mkdir()
    (other / ".featswap-run").write_text("")
    shutil.copytree(digits_store, other / "features.zarr")  # a store of a run with other weights
    shutil.copytree(demo_run[0] / "weights", other / "weights")  # the demo's own networks, trained already
    code, output = invoke(runner, "demo", "--out", str(other), "--paper-iterations", "5", "--quiet")
    assert code == 2 and "holds features of other models or weights than the demo's" in output
    assert (other / "features.zarr" / "zarr.json").is_file()


def test_map_files_replace_only_featswap_maps(tmp_path: Path, runner: CliRunner, digits_store: Path) -> None:
    fit = ["fit", "--store", str(digits_store), "--source", "tiny-resnet", "--target", "tiny-inception",
           "--solver", "lstsq", "--out"]  # fmt: skip
    (tmp_path / "weights.safetensors").write_bytes(b"a user's file")
    code, output = invoke(runner, *fit, str(tmp_path / "weights.safetensors"))
    assert code == 2 and "exists and is not a featswap map written by featswap" in one_error(output)
    assert (tmp_path / "weights.safetensors").read_bytes() == b"a user's file"
    code, output = invoke(runner, *fit, str(tmp_path))
    assert code == 2 and "is a directory; give a file path" in one_error(output)
    code, output = invoke(runner, *fit, str(tmp_path / "weights.safetensors" / "m.safetensors"))
    assert code == 2 and "is a file where a directory is needed" in one_error(output)
    assert invoke(runner, *fit, str(tmp_path / "m.safetensors"))[0] == 0
    assert invoke(runner, *fit, str(tmp_path / "m.safetensors"))[0] == 0  # its own map: replaced


def test_a_read_only_filesystem_is_one_line(
    read_only_dir: Path, runner: CliRunner, trained_weights: dict[str, Path], digits_store: Path
) -> None:
    code, output = invoke(runner, *extract(read_only_dir / "s.zarr", trained_weights))
    assert code == 2 and "Read-only file system" in one_error(output) and "s.zarr" in output
    code, output = invoke(runner, *compare(read_only_dir / "run", trained_weights))
    assert code == 2 and "Read-only file system" in one_error(output)
    fit = ["fit", "--store", str(digits_store), "--source", "tiny-resnet", "--target", "tiny-inception"]
    code, output = invoke(runner, *fit, "--solver", "lstsq", "--out", str(read_only_dir / "m.safetensors"))
    assert code == 2 and "Read-only file system" in one_error(output)


def test_a_full_disk_is_one_line_and_the_run_resumes_elsewhere(
    full_disk: Path, runner: CliRunner, trained_weights: dict[str, Path], digits_store: Path
) -> None:
    code, output = invoke(runner, *extract(full_disk / "s.zarr", trained_weights))
    message = one_error(output)
    assert code == 2 and "No space left on device" in message and "running the same command again resumes" in message
    code, output = invoke(runner, *compare(full_disk / "run", trained_weights))
    assert code == 2 and "No space left on device" in one_error(output)
    fit = ["fit", "--store", str(digits_store), "--source", "tiny-resnet", "--target", "tiny-inception", "--solver"]
    for leftover in list(full_disk.iterdir()):  # then fill the disk with a file of one's own
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    (full_disk / "filler").write_bytes(b"x" * (96 * 1024 - 8192))
    code, output = invoke(runner, *fit, "lstsq", "--out", str(full_disk / "m.safetensors"))
    assert code == 2 and "Cannot write" in one_error(output) and "m.safetensors" in output
