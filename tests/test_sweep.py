"""``initstats sweep``: cases from a TOML file, chunks committed to a store, resumed bit for bit.

The reference for every number is one uninterrupted ``initstats verify`` whose Monte Carlo draws
each network from the sweep's stream for it (``MeasureOptions.stream``): a sweep, however it is
scheduled, interrupted or spread over workers, must give exactly those rows.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from initstats.cli import app
from initstats.empirical.direct import measure_module
from initstats.empirical.measure import measure
from initstats.errors import InitStatsError, SweepChangedError, SweepError, SweepFileError, SweepLockedError
from initstats.families import make_arch
from initstats.graph import build_graph, write_graph
from initstats.sweep import CASE_KEYS, SweepStore, load_sweep, parse_sweep, run_sweep
from initstats.sweep.cases import NOT_CASE_KEYS

from .console import assert_bad_input, console_script

MODELS = Path(__file__).with_name("models.py")

FIXED = {"arch": "cnn", "dims": [8, 12], "channels": 2, "padding": "circular", "nets": 48, "chunk": 16}
ADAPTIVE = {"arch": "fc", "dims": [4, 8], "width": 16, "rel_se": 0.08, "max_nets": 2000, "chunk": 16}


def one_thread(fn):
    """Run ``fn`` with one torch thread: a sweep's chunks run with ``--threads 1``, and a CPU kernel
    may sum in another order with another number of threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def reference_rows(case) -> pd.DataFrame:
    """The rows of one uninterrupted verification of ``case``, each network drawn from its point's stream."""
    points = iter(case.points)

    def measurer(*args, **kwargs):  # (network, options) or, for an empirical case, (model, shape, options)
        point = next(points)
        *network, options = args
        run = measure_module if case.kind == "empirical" else measure
        return run(*network, replace(options, stream=point.stream), **kwargs)

    return one_thread(lambda: case.verify(measurer).rows)


def case_rows(result, name: str) -> pd.DataFrame:
    rows = result.rows()
    return rows[rows["case"] == name].drop(columns="case").reset_index(drop=True)


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "fc3.json"
    write_graph(build_graph(make_arch("fc", 3, width=8)), path)
    return path


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One sweep of a fixed and an adaptive case, uninterrupted, one worker."""
    sweep = parse_sweep({"seed": 5, "case": [FIXED, ADAPTIVE]})
    out = tmp_path_factory.mktemp("base")
    return sweep, out, run_sweep(sweep, out)


# -- the numbers ------------------------------------------------------------------------------------

def test_fixed_and_adaptive_cases_equal_one_uninterrupted_verify(base_run):
    sweep, _, result = base_run
    assert result.cases == ("cnn", "fc")
    for case in sweep.cases:
        frames_equal(case_rows(result, case.name), reference_rows(case))
    fc = case_rows(result, "fc")
    n = fc.loc[fc["statistic"] == "grad_logit_l2_sq", "n_nets"].tolist()
    assert all(64 <= k < 2000 for k in n) and n[0] != n[1], n  # adaptive: each size stopped by rel_se on its own
    assert result.chunks_stored >= result.chunks_run > 0


@pytest.mark.parametrize("kind", ["spec", "module", "empirical"])
def test_spec_and_module_cases_equal_one_uninterrupted_verify(kind, spec_file, tmp_path):
    table = {"spec": {"spec": str(spec_file), "nets": 40, "chunk": 16},
             "module": {"module": f"{MODELS}:functional_net", "dims": [6, 8], "nets": 40, "chunk": 16},
             "empirical": {"module": f"{MODELS}:functional_net", "dims": [6, 8], "nets": 40, "chunk": 16,
                           "empirical_only": True}}[kind]
    sweep = parse_sweep({"case": [table]})
    (case,) = sweep.cases
    assert case.kind == kind
    result = run_sweep(sweep, tmp_path)
    frames_equal(case_rows(result, case.name), reference_rows(case))
    assert result.chunks_run == sum(-(-40 // 16) for _ in case.points)


def test_a_case_does_not_depend_on_the_others(base_run, tmp_path):
    """Each case draws from its own stream: alone in a sweep, or with a different seed for the
    other case, it gives the same rows; two cases with different names draw different networks."""
    _, _, result = base_run
    alone = run_sweep(parse_sweep({"seed": 5, "case": [ADAPTIVE]}), tmp_path / "alone")
    frames_equal(case_rows(alone, "fc"), case_rows(result, "fc"))
    twins = run_sweep(parse_sweep({"seed": 5, "case": [FIXED, {**FIXED, "name": "other"}]}), tmp_path / "twins")
    frames_equal(case_rows(twins, "cnn"), case_rows(result, "cnn"))
    assert not np.array_equal(case_rows(twins, "cnn")["mean"], case_rows(twins, "other")["mean"])


def test_seed_changes_the_numbers(base_run, tmp_path):
    _, _, result = base_run
    other = run_sweep(parse_sweep({"seed": 6, "case": [FIXED]}), tmp_path)
    assert not np.array_equal(case_rows(other, "cnn")["mean"], case_rows(result, "cnn")["mean"])


# -- resume -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("after", [3, 12, 60])  # progress calls: two at the start, one per chunk
def test_resume_after_an_interruption_gives_the_uninterrupted_rows(base_run, tmp_path, after):
    sweep, _, result = base_run
    seen = []

    def interrupt(case, done, total):
        seen.append(done)
        if len(seen) > after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, tmp_path, progress=interrupt)
    with SweepStore.open(tmp_path) as store:
        kept = len(store.chunk_frame())
    assert 0 < kept < result.chunks_run
    resumed = run_sweep(sweep, tmp_path)
    assert resumed.chunks_run == result.chunks_run - kept  # nothing finished is redone
    frames_equal(resumed.rows(), result.rows())
    frames_equal(resumed.claims_frame(), result.claims_frame())


def test_two_local_workers_give_the_rows_of_one(base_run, tmp_path):
    sweep, _, result = base_run
    two = run_sweep(sweep, tmp_path, workers=2)
    frames_equal(two.rows(), result.rows())
    frames_equal(two.claims_frame(), result.claims_frame())


def test_report_only_recomputes_from_the_store_without_measuring(base_run, monkeypatch):
    sweep, out, result = base_run

    def no_backend(*args, **kwargs):
        raise AssertionError("--report-only must not start a backend")

    monkeypatch.setattr("initstats.sweep.backends.make_backend", no_backend)
    again = run_sweep(sweep, out, report_only=True)
    assert again.chunks_run == 0
    frames_equal(again.rows(), result.rows())
    # a finished store is complete: a plain rerun measures nothing either
    assert run_sweep(sweep, out).chunks_run == 0


def test_changed_settings_reverify_the_store_without_measuring(base_run, tmp_path):
    sweep, _, result = base_run
    run_sweep(sweep, tmp_path)
    looser = parse_sweep({"seed": 5, "case": [{**FIXED, "confidence": 0.9, "excess_tolerance": 0.2}, ADAPTIVE]})
    again = run_sweep(looser, tmp_path, report_only=True)
    frames_equal(again.rows(), result.rows())  # the same measurements ...
    details = " ".join(again.verifications[0].claims_frame()["detail"])
    assert "90% interval" in details and "99% interval" not in details  # ... verified with the new settings


def test_report_only_on_an_unfinished_or_empty_directory_is_an_error(base_run, tmp_path):
    sweep, _, _ = base_run
    with pytest.raises(SweepError, match="no sweep in"):
        run_sweep(sweep, tmp_path / "empty", report_only=True)
    assert not (tmp_path / "empty").exists()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, tmp_path / "half", progress=lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SweepError, match="not measured yet|unfinished"):
        run_sweep(sweep, tmp_path / "half", report_only=True)


def _sweep_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(body)
    return path


LONG = """seed = 1
[[case]]
arch = "fc"
dims = [4, 8]
width = 8
nets = 1600
chunk = 8
"""


def _stored_chunks(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT count(*) FROM chunks").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_rows(tmp_path):
    """The issue's acceptance test: ``kill -9`` a running sweep, run the same command again."""
    path = _sweep_file(tmp_path, LONG)
    cmd = [console_script(), "sweep", str(path), "--format", "csv", "--no-plot"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _stored_chunks(killed / "sweep.sqlite") < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed; make LONG longer"
    stored = _stored_chunks(killed / "sweep.sqlite")
    assert 20 <= stored < 400
    assert not (killed / "rows.csv").exists()
    resumed = subprocess.run([*cmd, "--out", str(killed)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run([*cmd, "--out", str(tmp_path / "fresh")], capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    assert (killed / "rows.csv").read_text() == (tmp_path / "fresh" / "rows.csv").read_text()
    assert resumed.stdout == fresh.stdout
    assert (killed / "claims.csv").read_text() == (tmp_path / "fresh" / "claims.csv").read_text()


# -- the directory ----------------------------------------------------------------------------------

def test_a_second_sweep_on_a_locked_directory_is_refused(base_run, tmp_path):
    sweep, _, _ = base_run
    with SweepStore.open(tmp_path):
        with pytest.raises(SweepLockedError, match=str(os.getpid())):
            run_sweep(sweep, tmp_path)
    run_sweep(parse_sweep({"case": [{**FIXED, "nets": 16}]}), tmp_path)  # released


def test_a_changed_case_is_named_and_force_discards_it(base_run, tmp_path):
    sweep, out, result = base_run
    work = tmp_path / "work"
    first = run_sweep(sweep, work)
    changed = parse_sweep({"seed": 5, "case": [{**FIXED, "nets": 56}, ADAPTIVE]})
    before = (work / "sweep.sqlite").read_bytes()
    with pytest.raises(SweepChangedError, match=r"case 'cnn' differs.*nets: 48 -> 56.*--force"):
        run_sweep(changed, work)
    assert (work / "sweep.sqlite").read_bytes() == before  # nothing lost
    forced = run_sweep(changed, work, force=True)
    assert forced.chunks_run == 2 * 4  # only the changed case is measured again: 56 nets in chunks of 16
    frames_equal(case_rows(forced, "fc"), case_rows(first, "fc"))
    frames_equal(case_rows(forced, "cnn"), case_rows(run_sweep(changed, tmp_path / "fresh"), "cnn"))
    with pytest.raises(SweepChangedError, match="'fc' is no longer in the sweep file"):
        run_sweep(parse_sweep({"seed": 5, "case": [{**FIXED, "nets": 56}]}), work)


# -- the file ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, needle", [
    ({"case": [{"arch": "fc", "dim": [4]}]}, "unknown key 'dim'; did you mean 'dims'?"),
    ({"case": [{"arch": "fc", "dims": [4], "nets": "many"}]}, "nets = 'many' is invalid; expected an integer"),
    ({"case": [{"arch": "fc", "dims": [4], "batchnorm": 1}]}, "batchnorm = 1 is invalid; expected true or false"),
    ({"case": [{"arch": "fc", "dims": [0]}]}, "dims = [0] is invalid"),
    ({"case": [{"arch": "fc", "dims": [4], "max_time": 10}]}, "'max_time' is not a key of a case"),
    ({"case": [{"arch": "fc", "dims": [4], "out": "x"}]}, "'out' is not a key of a case"),
    ({"case": [{"dims": [4]}]}, "give exactly one of arch, spec, module"),
    ({"case": [{"arch": "fc", "dims": [4], "nets": 10, "rel_se": 0.1}]}, "either nets"),
    ({"case": [{"arch": "vgg", "dims": [4]}]}, "unknown architecture 'vgg'"),
    ({"case": [{"arch": "fc", "dims": [4], "init": "xavier"}]}, "init"),
    ({"case": []}, "the sweep has no cases"),
    ({"seed": 0}, "the sweep has no cases"),
    ({"sed": 0, "case": [{"arch": "fc", "dims": [4]}]}, "unknown top-level key 'sed'; did you mean 'seed'?"),
    ({"seed": -1, "case": [{"arch": "fc", "dims": [4]}]}, "seed = -1 is invalid"),
    ({"case": [{"arch": "fc", "dims": [4], "name": "a"}, {"arch": "fc", "dims": [8], "name": "a"}]},
     "the name 'a' is taken by case 1"),
])
def test_bad_sweep_files_are_named(data, needle):
    with pytest.raises(SweepFileError) as err:
        parse_sweep(data)
    assert needle in str(err.value)
    assert isinstance(err.value, InitStatsError)


def test_case_keys_are_the_verify_options():
    """Drift guard: every option of ``initstats verify`` is a case key or refused with a reason."""
    verify_command = typer.main.get_command(app).commands["verify"]  # type: ignore[attr-defined]
    verify = {p.opts[0].removeprefix("--").replace("-", "_") for p in verify_command.params
              if p.param_type_name == "option" and p.opts[0].startswith("--")}
    sweep_only = {"name", "chunk"} - verify
    assert verify == (set(CASE_KEYS) | set(NOT_CASE_KEYS)) - sweep_only, \
        (verify ^ ((set(CASE_KEYS) | set(NOT_CASE_KEYS)) - sweep_only))


def test_relative_paths_are_relative_to_the_sweep_file(spec_file, tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "net.json").write_text(spec_file.read_text())
    path = _sweep_file(tmp_path, '[[case]]\nspec = "specs/net.json"\nnets = 8\n')
    monkeypatch.chdir("/")
    (case,) = load_sweep(path).cases
    assert case.name == "net" and Path(case.keys["spec"]) == (tmp_path / "specs" / "net.json").resolve()


# -- the command ------------------------------------------------------------------------------------

runner = CliRunner()


def sweep_cli(*args):
    return runner.invoke(app, ["sweep", *map(str, args)])


def test_cli_writes_the_tables_and_prints_json(tmp_path):
    path = _sweep_file(tmp_path, '[[case]]\narch = "fc"\ndims = [4, 8]\nwidth = 8\nnets = 32\n'
                                 '[[case]]\narch = "cnn"\ndims = [8, 12]\nchannels = 2\nnets = 32\n')
    out = tmp_path / "out"
    res = sweep_cli(path, "--out", out, "--format", "json", "--no-plot")
    assert res.exit_code in (0, 1), res.stderr
    data = json.loads(res.stdout)
    assert set(data) == {"rows", "claims"}
    assert {r["case"] for r in data["rows"]} == {"fc", "cnn"} == {c["case"] for c in data["claims"]}
    rows = pd.read_csv(out / "rows.csv")
    assert list(rows.columns[:3]) == ["case", "arch", "d"]
    assert len(rows) == len(data["rows"])
    assert len(pd.read_csv(out / "claims.csv")) == len(data["claims"])
    for name in ("report.md", "sweep.json", "cases/fc/rows.csv", "cases/cnn/claims.csv", "cases/cnn/report.md"):
        assert (out / name).is_file(), name
    assert "## Case `cnn`" in (out / "report.md").read_text()
    # --report-only from the store, as csv: the same rows
    again = sweep_cli(path, "--out", out, "--format", "csv", "--report-only", "--no-plot")
    assert again.exit_code in (0, 1) and again.stdout == (out / "rows.csv").read_text()


@pytest.mark.parametrize("body, needles", [
    ('[[case]]\narch = "fc"\ndims = [4]\nnetz = 3\n', ["unknown key 'netz'", "did you mean 'nets'?"]),
    ('[[case]]\narch = "fc"\ndims = "four"\n', ["dims = 'four' is invalid", "a list of integers"]),
    ('seed = 0\n', ["the sweep has no cases"]),
    ('[[case]\narch = "fc"\n', ["not valid TOML"]),
])
def test_cli_bad_files_exit_2(tmp_path, body, needles):
    path = _sweep_file(tmp_path, body)
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "out"), str(path), *needles)
    assert not (tmp_path / "out").exists()


def test_cli_bad_directories_and_options_exit_2(tmp_path, monkeypatch):
    path = _sweep_file(tmp_path, '[[case]]\narch = "fc"\ndims = [4]\nwidth = 4\nnets = 8\n')
    (tmp_path / "file").write_text("keep me")
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "file"), "is not a directory")
    assert (tmp_path / "file").read_text() == "keep me"
    assert_bad_input(sweep_cli(path, "--out", "/proc/initstats-sweep"), "cannot write the sweep directory")
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "o", "--backend", "mpi"), "--backend 'mpi'")
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "o", "--workers", "0"), "--workers 0")
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "o", "--threads", "0"), "--threads 0")
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "o", "--ray-address", "auto"), "--ray-address")
    assert_bad_input(sweep_cli(tmp_path / "missing.toml", "--out", tmp_path / "o"), "cannot read the sweep file")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert_bad_input(sweep_cli(path, "--out", tmp_path / "o", "--backend", "ray"), "needs Ray", 'pip install -e ".[ray]"')


def test_cli_changed_file_and_locked_directory_exit_2(tmp_path):
    path = _sweep_file(tmp_path, '[[case]]\narch = "fc"\ndims = [4]\nwidth = 4\nnets = 8\n')
    out = tmp_path / "out"
    assert sweep_cli(path, "--out", out, "--format", "csv", "--no-plot").exit_code in (0, 1)
    rows = (out / "rows.csv").read_text()
    path.write_text('[[case]]\narch = "fc"\ndims = [4]\nwidth = 4\nnets = 9\n')
    assert_bad_input(sweep_cli(path, "--out", out, "--format", "csv"), "case 'fc' differs", "nets: 8 -> 9", "--force")
    assert (out / "rows.csv").read_text() == rows  # nothing lost
    with SweepStore.open(out):
        assert_bad_input(sweep_cli(path, "--out", out, "--force"), "another sweep is running")
    res = sweep_cli(path, "--out", out, "--format", "csv", "--force", "--no-plot")
    assert res.exit_code in (0, 1) and pd.read_csv(out / "rows.csv")["n_nets"].eq(9).all()
