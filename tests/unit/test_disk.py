"""A full disk and a crash mid-write: the driver stops with one line naming the disk (exit status 5), the
journal stays consistent, and a resume after space is freed finishes with every evaluation recorded once and
the results of an uninterrupted run. A torn last journal line is set aside and what it said is done again.

The full disk is faked at the OS boundary (``os.write``/``os.fsync`` answer ENOSPC or EDQUOT for one file,
after a short write, as a filling filesystem does); one test fills a real, tiny tmpfs instead (root only).
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import workflow.session
from tests.support import ROOT, SMOKE
from workflow.cli import main
from workflow.errors import DiskFullError
from workflow.store import RunStore
from workflow.store.events import Created, Finished, ResultRecorded
from workflow.store.results import read_results_csv

RUN = ["objective.kind=python", "objective.function=tests.objectives.landscape:seed_landscape",
       f"objective.path={ROOT}", "objective.metric=value", "backend.name=inline", "optimizer.population_size=4",
       "optimizer.generations=3", "--no-report"]


@pytest.fixture
def quiet_driver(monkeypatch):
    """The driver's process-wide set-up (log handlers, signal handlers) left out so nothing outlives the test."""
    for name in ("log_to_console", "log_to_file", "stop_on"):
        monkeypatch.setattr(workflow.session, name, lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict[str, str]]:
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("log_to_console", "log_to_file", "stop_on"):
            patch.setattr(workflow.session, name, lambda *args, **kwargs: None)
        assert _main(["run", str(SMOKE), *RUN], run_dir) == 0
    return _outcome(run_dir)


def _main(args: list[str], run_dir: Path) -> int:
    return main([*args, "--run-dir", str(run_dir)] if args[0] == "run" else args)


def _outcome(run_dir: Path) -> list[dict[str, str]]:
    """The run's results without what differs from run to run (times); checks each evaluation is journaled once."""
    events = list(RunStore.open(run_dir).events())
    recorded = Counter(e.result.name for e in events if isinstance(e, ResultRecorded))
    assert recorded and set(recorded.values()) == {1}, recorded
    assert isinstance(events[-1], Finished)
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_results_csv(run_dir / "results.csv")]


def _fd_name(fd: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return ""


class FullDisk:
    """``os.write`` (and ``os.fsync``) answering a full disk for one file once it has been written ``after``
    times: the first failing write writes half its bytes (a short write), every later one raises."""

    def __init__(self, monkeypatch, name: str, after: int, code: int = errno.ENOSPC, at: str = "write") -> None:
        self.name, self.after, self.code, self.at = name, after, code, at
        self.writes, self.full, self.raised = 0, False, 0
        write, fsync = os.write, os.fsync

        def fake_write(fd, data):
            if _fd_name(fd) == self.name and self.at == "write":
                self.writes += 1
                if self.writes > self.after:
                    if not self.full:
                        self.full = True
                        return write(fd, bytes(data)[: max(1, len(data) // 2)])
                    self.raised += 1
                    raise OSError(self.code, os.strerror(self.code))
            return write(fd, data)

        def fake_fsync(fd):
            if _fd_name(fd) == self.name and self.at == "fsync":
                self.writes += 1
                if self.writes > self.after:
                    self.raised += 1
                    raise OSError(self.code, os.strerror(self.code))
            return fsync(fd)

        monkeypatch.setattr(os, "write", fake_write)
        monkeypatch.setattr(os, "fsync", fake_fsync)


def _journal_is_whole(run_dir: Path) -> None:
    raw = (run_dir / "journal.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    for line in raw.splitlines():
        json.loads(line)  # no partial line was left behind


def _one_disk_line(capsys, run_dir: Path, name: str, code: int) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith("error: ") and f"({errno.errorcode[code]})" in line and name in line
    assert line.endswith(f"then `python -m workflow resume {shlex.quote(str(run_dir))}`"), line
    return line


@pytest.mark.parametrize(("name", "after", "code", "at"), [
    ("journal.jsonl", 12, errno.ENOSPC, "write"),   # a journal line written part-way
    ("journal.jsonl", 19, errno.EDQUOT, "write"),   # the quota instead of the device
    ("journal.jsonl", 1, errno.ENOSPC, "fsync"),    # reported only at fsync (NFS, Lustre)
    ("results.csv", 5, errno.ENOSPC, "write"),      # a row of results.csv written part-way
])
def test_a_full_disk_stops_with_one_line_and_resume_loses_nothing(tmp_path, quiet_driver, monkeypatch, capsys,
                                                                  uninterrupted, name, after, code, at):
    run_dir = tmp_path / "a run"
    with monkeypatch.context() as patch:
        disk = FullDisk(patch, name, after, code, at)
        results_before = None
        if name == "results.csv":
            results_before = []
            fake = os.write

            def remember(fd, data):  # what results.csv held before the failing write
                if _fd_name(fd) == name and disk.writes == after:
                    results_before.append((run_dir / name).read_bytes())
                return fake(fd, data)

            patch.setattr(os, "write", remember)
        assert _main(["run", str(SMOKE), *RUN], run_dir) == DiskFullError.exit_code
        assert disk.raised
    _one_disk_line(capsys, run_dir, name, code)
    _journal_is_whole(run_dir)
    if results_before:
        assert (run_dir / name).read_bytes() == results_before[-1]  # the old complete table, no half row
    assert not (run_dir / "driver.lease").exists()
    assert main(["resume", str(run_dir), "--no-report"]) == 0
    assert _outcome(run_dir) == uninterrupted


def test_an_evaluation_that_meets_a_full_disk_is_not_recorded_but_evaluated_again(tmp_path, quiet_driver, capsys,
                                                                                  uninterrupted):
    """The objective's own write fails (its work directory is on the full disk): the disk's fault, not the
    candidate's, so it is not recorded as a failed evaluation."""
    marker = tmp_path / "filled"
    (tmp_path / "filling.py").write_text(
        "import errno, os\n"
        "from tests.objectives.landscape import seed_landscape\n"
        "def evaluate(hparams, context):\n"
        f"    if context.name == 'fitness-2-1' and not os.path.exists({str(marker)!r}):\n"
        f"        open({str(marker)!r}, 'w').close()\n"
        "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(context.workdir / 'model.ckpt'))\n"
        "    return seed_landscape(hparams, context)\n")
    run = [a for a in RUN if not a.startswith(("objective.function", "objective.path"))]
    run += ["objective.function=filling:evaluate", f"objective.path={tmp_path}"]
    run_dir = tmp_path / "run"
    assert _main(["run", str(SMOKE), *run], run_dir) == 5
    _one_disk_line(capsys, run_dir, "model.ckpt", errno.ENOSPC)
    assert "fitness-2-1" not in RunStore.open(run_dir).replay().results
    assert main(["resume", str(run_dir), "--no-report"]) == 0
    assert _outcome(run_dir) == uninterrupted


def test_a_torn_last_line_is_set_aside_and_resume_finishes(tmp_path, quiet_driver, uninterrupted, caplog):
    run_dir = tmp_path / "run"
    assert _main(["run", str(SMOKE), *RUN], run_dir) == 0
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    # A crash while writing a result in the middle of the run: the journal as that crash would have left it.
    cut = [i for i, line in enumerate(lines) if b'"result"' in line][len(lines) // 4]
    whole, torn = b"".join(lines[:cut]), lines[cut][: len(lines[cut]) // 2]
    journal.write_bytes(whole + torn)
    assert len(list(RunStore.open(run_dir).events())) == cut  # readers skip the torn line
    caplog.set_level("WARNING", logger="workflow.store.journal")
    assert main(["resume", str(run_dir), "--no-report"]) == 0
    aside = list(run_dir.glob("journal.jsonl.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == torn
    warned = [r.getMessage() for r in caplog.records if "torn" in r.getMessage()]
    assert len(warned) == 1 and aside[0].name in warned[0]
    assert journal.read_bytes().startswith(whole) and b"\n" + torn not in journal.read_bytes()
    _journal_is_whole(run_dir)
    assert _outcome(run_dir) == uninterrupted


def test_a_last_line_missing_only_its_newline_is_kept(tmp_path):
    from workflow.config import from_mapping

    store = RunStore.create(tmp_path / "run", from_mapping({"name": "t"}))
    store.journal_path.write_bytes(store.journal_path.read_bytes().rstrip(b"\n"))
    again = RunStore.open(store.run_dir)
    again.append(Finished())
    assert [type(e) for e in again.events()] == [Created, Finished]
    assert not list(store.run_dir.glob("journal.jsonl.torn-*"))


@pytest.fixture
def tiny_tmpfs(tmp_path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (root only; skipped where mounting is not permitted), always unmounted."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_real_full_disk_mid_run_then_space_freed_and_resume(tmp_path, tiny_tmpfs, quiet_driver, capsys,
                                                              uninterrupted):
    ballast, marker = tiny_tmpfs / "ballast", tmp_path / "filled"
    (tmp_path / "ballasting.py").write_text(
        "import errno, os\n"
        "from tests.objectives.landscape import seed_landscape\n"
        "def evaluate(hparams, context):\n"
        f"    if context.name == 'fitness-1-2' and not os.path.exists({str(marker)!r}):\n"
        f"        open({str(marker)!r}, 'w').close()\n"
        f"        fd = os.open({str(ballast)!r}, os.O_WRONLY | os.O_CREAT)  # the disk fills up during the search\n"
        "        try:\n"
        "            while True:\n"
        "                os.write(fd, b'x' * 4096)\n"
        "        except OSError as exc:\n"
        "            assert exc.errno == errno.ENOSPC\n"
        "        os.close(fd)\n"
        "    return seed_landscape(hparams, context)\n")
    run = [a for a in RUN if not a.startswith(("objective.function", "objective.path"))]
    run += ["objective.function=ballasting:evaluate", f"objective.path={tmp_path}"]
    run_dir = tiny_tmpfs / "run"
    assert _main(["run", str(SMOKE), *run], run_dir) == 5
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert f"mounted at {tiny_tmpfs} (ENOSPC)" in line and line.endswith(
        f"then `python -m workflow resume {shlex.quote(str(run_dir))}`"), line
    _journal_is_whole(run_dir)
    ballast.unlink()  # space freed
    assert main(["resume", str(run_dir), "--no-report"]) == 0
    assert _outcome(run_dir) == uninterrupted
