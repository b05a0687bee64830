"""Progress where stderr is not a terminal (CI logs, ``| tee``): a plain line every ~10 s (issue 19).

Before, ``salbench eval`` showed a tqdm bar only on a terminal and nothing elsewhere: 40 s
passed after "scoring 500 images" without a line.
"""

from __future__ import annotations

import numpy as np
import pytest

import salbench.io.progress as progress
from salbench.cli import main


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_a_line_every_interval_then_a_last_one(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bar = progress.progress_bar(500, "mit: scoring", "mit: scored")  # capsys: stderr is not a terminal
    assert isinstance(bar, progress.ProgressLines)
    for _ in range(35):  # 35 s, 10 images a second
        clock.t += 1.0
        bar.update(10)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["salbench: mit: scored 100 of 500 images, 10.0 images/s",
                     "salbench: mit: scored 200 of 500 images, 10.0 images/s",
                     "salbench: mit: scored 300 of 500 images, 10.0 images/s",
                     "salbench: mit: scored 350 of 500 images, 10.0 images/s"]


def test_the_last_line_is_not_repeated_at_close(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bar = progress.progress_bar(500, "mit: scoring", "mit: scored")
    clock.t += 20.0
    bar.update(500)  # the line of this update already says 500 of 500
    bar.close()
    assert capsys.readouterr().err.splitlines() == ["salbench: mit: scored 500 of 500 images, 25.0 images/s"]


def test_a_run_shorter_than_the_interval_prints_nothing(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bar = progress.progress_bar(10, "mit: scoring", "mit: scored")
    clock.t += 9.9
    bar.update(10)
    bar.close()
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_tqdm_bar(monkeypatch):
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    bar = progress.progress_bar(10, "mit: scoring", "mit: scored")
    try:
        assert type(bar).__module__.startswith("tqdm")
    finally:
        bar.close()


def _records(n=6):
    from salbench.data import get_dataset

    return list(get_dataset("synthetic", "val", preset="small", n_images=n))


def test_score_stream_writes_lines_not_carriage_returns(monkeypatch, capsys):
    from salbench.scoring import score_stream

    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.0)
    records = _records()
    score_stream("coursework", records, lambda i: np.ones((48, 48)), seed=0, chunk_size=2, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert "salbench: coursework: scored 6 of 6 images" in [ln.split(",")[0] for ln in lines]
    assert all(ln.startswith("salbench: coursework: ") and ln.endswith(" images/s") for ln in lines)
    score_stream("coursework", records, lambda i: np.ones((48, 48)), seed=0, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_eval_reports_progress_in_a_log(tmp_path, monkeypatch, capsys, fmt):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SALBENCH_DATA", raising=False)
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.0)
    assert main(["eval", "--model", "uniform", "--option", "preset=small", "--option", "n_images=8",
                 "--results-dir", str(tmp_path / "res"), "--format", fmt]) == 0
    err = capsys.readouterr().err
    assert "salbench: mit: scored 8 of 8 images, " in err and "\r" not in err
