"""`watchkeeper demo` deletes nothing outside its own folder and only what it generated inside it;
`--serve` reopens a built demo and refuses a folder that is not one."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT, WATCHKEEPER


def run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WATCHKEEPER, "demo", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_rebuilding_clears_only_what_the_demo_generated(tmp_path):
    from cli.demo import GENERATED, MARKER, prepare_folder

    home = tmp_path / ".demo"
    neighbour = tmp_path / "notes.txt"
    neighbour.write_text("mine")
    prepare_folder(home)                       # a new folder becomes a demo folder
    assert (home / MARKER).exists()
    for name in GENERATED:
        (home / name).mkdir()
        (home / name / "old").write_text("stale")
    (home / "my_analysis.ipynb").write_text("{}")
    prepare_folder(home)
    assert neighbour.read_text() == "mine", "a file next to the demo folder survives"
    assert (home / "my_analysis.ipynb").exists(), "a file of the user's inside it survives too"
    assert not any((home / name).exists() for name in GENERATED)


def test_a_non_empty_folder_that_is_no_demo_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    done = run_demo("--headless", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"watchkeeper demo: error: {tmp_path}: folder is not empty and holds no demo; choose an empty or new folder"]
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("make", [False, True])
def test_serve_refuses_a_folder_that_is_no_demo(tmp_path, make):
    folder = tmp_path / "elsewhere"
    if make:
        folder.mkdir()
    done = run_demo("--serve", str(folder))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "not a demo folder" in done.stderr if make else "no such folder" in done.stderr


def test_default_folder_is_dot_demo():
    assert "(default: .demo)" in " ".join(run_demo("--help").stdout.split())
