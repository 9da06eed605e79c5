"""The command objective: placeholders, value formatting, metrics, and running a user's program safely
(no shell, whole process group taken down on a timeout or an interruption, output kept in the workdir)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from workflow.objectives.placeholders import check_argv, format_value, placeholders, render_argv
from workflow.objectives.process import (
    CommandOutcome,
    command_environment,
    install_termination_handler,
    parse_metrics,
    run_command,
)

REPO = Path(__file__).resolve().parents[2]

# A child that starts a grandchild, writes "<child pid> <grandchild pid>" to argv[1], then sleeps.
# argv[2]: "plain" (default SIGTERM), "stubborn" (ignores SIGTERM; the grandchild inherits SIG_IGN),
# "trap" (the child exits 0 on SIGTERM, after writing argv[1] + ".trapped").
FAMILY = """
import os, signal, subprocess, sys, time
pidfile, mode = sys.argv[1], sys.argv[2]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "trap":
    def on_term(signum, frame):
        with open(pidfile + ".trapped", "w") as fh:
            fh.write("trapped")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(pidfile + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()} {grandchild.pid}")
os.replace(pidfile + ".tmp", pidfile)
print("family started", flush=True)
time.sleep(60)
"""


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **extra}


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (an orphaned grandchild may wait for PID 1 to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def _still_alive(pids: list[int], within_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while True:
        left = [pid for pid in pids if _alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def _family_pids(pidfile: Path) -> list[int]:
    assert pidfile.exists(), "the child did not get as far as starting its grandchild"
    return [int(p) for p in pidfile.read_text().split()]


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------------------------------------ placeholders


def test_placeholders_whole_and_partial_in_first_use_order():
    argv = ["python", "train.py", "--lr={learning_rate}", "{layers}", "{workdir}/out", "{layers}", "{a}{b}x"]
    assert placeholders(argv) == ["learning_rate", "layers", "workdir", "a", "b"]
    assert placeholders(["python", "{{literal}}", "}}{{"]) == []


def test_render_whole_partial_and_literal_braces():
    argv = ["python", "--lr={learning_rate}", "{layers}", "{{literal}}", "{{{name}}}", "{a}-{b}"]
    values = {"learning_rate": 0.001, "layers": [64, 32], "name": "x", "a": 1, "b": True}
    assert render_argv(argv, values) == ["python", "--lr=0.001", "64,32", "{literal}", "{x}", "1-true"]


@pytest.mark.parametrize(
    "bad", ["{a.b}", "{a[0]}", "{x:3}", "{x!r}", "{}", "{ x }", "{x", "x}", "--lr={lr", "{a{b}}", "{1x}", "{x:}"]
)
def test_bad_placeholder_syntax_names_the_argument(bad):
    with pytest.raises(ValueError) as info:
        placeholders(["python", "ok", bad])
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError, match="argument"):
        check_argv(["python", bad], {"a", "x", "lr"})
    with pytest.raises(ValueError):
        render_argv(["python", bad], {"a": 1, "x": 1, "lr": 1, "b": 1})


def test_unknown_placeholder_message_is_pinned():
    with pytest.raises(ValueError) as info:
        check_argv(["python", "--lr={lr}"], ["learning_rate", "layers"])
    assert str(info.value) == "placeholder {lr} in argument '--lr={lr}' names nothing; known: layers, learning_rate"
    with pytest.raises(ValueError, match="names nothing; known: learning_rate$"):
        render_argv(["python", "{lr}"], {"learning_rate": 0.1})
    check_argv(["python", "--lr={lr}", "{{lr}}"], {"lr"})  # known: fine


def test_check_argv_rejects_empty_non_string_and_one_string():
    with pytest.raises(ValueError, match="empty"):
        check_argv([], {"a"})
    with pytest.raises(ValueError, match=r"argument 1 .*int.*not a string"):
        check_argv(["python", 3], {"a"})  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not one string"):
        check_argv("python train.py", {"a"})
    for message in (str(e) for e in _errors(check_argv)):
        assert "\n" not in message


def _errors(check):
    out = []
    for argv, known in (([], set()), (["x", None], set()), (["{zz}"], {"a", "b"}), (["{a.b}"], {"a"})):
        try:
            check(argv, known)
        except ValueError as exc:
            out.append(exc)
    assert len(out) == 4
    return out


# ------------------------------------------------------------------------------------------------ format_value


@pytest.mark.parametrize(
    "value, text",
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (-7, "-7"),
        (0.1, "0.1"),
        (2.0, "2.0"),
        (1e-05, "1e-05"),
        (0.1 + 0.2, "0.30000000000000004"),
        ("adam", "adam"),
        ("", ""),
        ([64, 32, 16], "64,32,16"),
        ((8,), "8"),
        ([], ""),
        (np.int64(5), "5"),
        (np.uint8(7), "7"),
        (np.float64(0.25), "0.25"),
        (np.float32(0.5), "0.5"),
        (np.bool_(True), "true"),
        (np.bool_(False), "false"),
        ([np.int64(4), 2], "4,2"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_value_float_round_trips():
    for value in (1 / 3, 3.0e-7, 123456.789, np.float64(1 / 7)):
        assert float(format_value(value)) == float(value)


@pytest.mark.parametrize("value", [None, {"a": 1}, [1.5, 2], [True, 2], ["a"], b"bytes", object(), 1j])
def test_format_value_rejects_other_types(value):
    with pytest.raises(ValueError):
        format_value(value)


# ------------------------------------------------------------------------------------------------ parse_metrics


def test_parse_metrics_last_json_line_wins_and_only_numbers_stay():
    stdout = 'epoch 1\n{"val_loss": 0.9}\nnoise {"x": 1}\n  {"val_loss": 0.5, "acc": 1, "name": "m", "ok": true}  \n'
    assert parse_metrics(stdout, None) == ({"val_loss": 0.5, "acc": 1.0}, "stdout")


def test_parse_metrics_non_finite_kept_and_objects_without_numbers_skipped():
    metrics, source = parse_metrics('{"val_loss": NaN, "b": Infinity}\n{"status": "done"}\n[1, 2]\n', None)
    assert source == "stdout" and metrics is not None
    assert math.isnan(metrics["val_loss"]) and metrics["b"] == math.inf


def test_parse_metrics_none():
    assert parse_metrics("", None) == (None, "")
    assert parse_metrics("hello\n{not json}\n[1]\n", None) == (None, "")


def test_parse_metrics_file_wins(tmp_path):
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps({"val_loss": 0.1, "tag": "x"}))
    assert parse_metrics('{"val_loss": 0.9}\n', file) == ({"val_loss": 0.1}, "metrics.json")
    assert parse_metrics('{"val_loss": 0.9}\n', tmp_path / "missing.json") == ({"val_loss": 0.9}, "stdout")


@pytest.mark.parametrize(
    "content, why", [("[1, 2]", "not a JSON object"), ('{"a": "x"}', "no numeric value"), ("{oops", "not valid JSON")]
)
def test_parse_metrics_unusable_file_falls_back_and_is_reported(tmp_path, content, why):
    file = tmp_path / "metrics.json"
    file.write_text(content)
    metrics, source = parse_metrics('{"val_loss": 0.9}\n', file)
    assert metrics == {"val_loss": 0.9}
    assert source.startswith("stdout; metrics.json (") and why in source and source.endswith("; ignored)")
    metrics, source = parse_metrics("no json\n", file)
    assert metrics is None and source.startswith("metrics.json (") and why in source


# ------------------------------------------------------------------------------------------------ running

HOSTILE = [
    "a; rm -rf ./victim",
    "$(touch pwned)",
    "`touch pwned_bt`",
    "x | touch pwned_pipe && touch pwned_and",
    "'single' \"double\"",
    "line one\nline two",
    "  spaced  out  ",
    "{not_a_placeholder}",
    "{{doubled}}",
    "ünïcødé ✓ 雪",
    "*",
    "",
    "-rf",
]


def test_hostile_values_arrive_as_one_literal_argument_each(tmp_path):
    (tmp_path / "victim").mkdir()
    received = tmp_path / "received.json"
    child = _script(
        tmp_path,
        "echo_args.py",
        "import json, sys\nopen(sys.argv[1], 'w', encoding='utf-8').write(json.dumps(sys.argv[2:]))\n",
    )
    names = [f"v{i}" for i in range(len(HOSTILE))]
    values = dict(zip(names, HOSTILE))
    argv = [sys.executable, str(child), str(received)] + [f"{{{n}}}" for n in names] + ["--x={v0}={v1}"]
    rendered = render_argv(argv, values)
    assert rendered[3:] == HOSTILE + [f"--x={HOSTILE[0]}={HOSTILE[1]}"]
    outcome = run_command(rendered, cwd=tmp_path, env=_env(), workdir=tmp_path / "w")
    assert outcome.returncode == 0, outcome.stderr_tail
    assert json.loads(received.read_text(encoding="utf-8")) == rendered[3:]
    assert (tmp_path / "victim").is_dir()
    for where in (tmp_path, tmp_path / "w", Path.cwd()):
        assert not [p.name for p in where.iterdir() if p.name.startswith("pwned")]


def test_exit_code_and_stderr_tail(tmp_path):
    child = _script(tmp_path, "fail.py", "import sys\nprint('x' * 5000, file=sys.stderr)\nsys.exit('bad thing: 42')\n")
    outcome = run_command([sys.executable, str(child)], cwd=tmp_path, env=_env(), workdir=tmp_path / "w")
    assert outcome.returncode == 1
    child = _script(tmp_path, "fail3.py", "import sys\nsys.stderr.write('x' * 5000 + 'the real error')\nsys.exit(3)\n")
    outcome = run_command([sys.executable, str(child)], cwd=tmp_path, env=_env(), workdir=tmp_path / "w")
    assert isinstance(outcome, CommandOutcome)
    assert outcome.returncode == 3 and not outcome.timed_out
    assert outcome.stderr_tail.endswith("the real error") and len(outcome.stderr_tail) == 2000
    assert outcome.metrics is None and outcome.metrics_source == ""
    assert outcome.seconds > 0


def test_no_json_output_means_no_metrics(tmp_path):
    child = _script(tmp_path, "quiet.py", "print('training...')\nprint('done')\n")
    outcome = run_command([sys.executable, str(child)], cwd=tmp_path, env=_env(), workdir=tmp_path / "w")
    assert outcome.returncode == 0 and outcome.metrics is None and outcome.metrics_source == ""
    assert outcome.stdout_tail == "training...\ndone\n"


def test_last_json_line_of_stdout_wins(tmp_path):
    child = _script(
        tmp_path,
        "lines.py",
        "import json\nprint(json.dumps({'val_loss': 3.0}))\nprint('epoch done')\n"
        "print(json.dumps({'val_loss': 1.5, 'acc': 0.75, 'model': 'mlp', 'best': True}))\nprint('bye')\n",
    )
    outcome = run_command([sys.executable, str(child)], cwd=tmp_path, env=_env(), workdir=tmp_path / "w")
    assert outcome.metrics == {"val_loss": 1.5, "acc": 0.75} and outcome.metrics_source == "stdout"


def test_metrics_json_written_by_the_program_beats_stdout(tmp_path):
    workdir = tmp_path / "w"
    child = _script(
        tmp_path,
        "writes.py",
        "import json, os, sys\n"
        "open(os.path.join(sys.argv[1], 'metrics.json'), 'w').write(json.dumps({'val_loss': 0.25}))\n"
        "print(json.dumps({'val_loss': 9.0}))\n",
    )
    argv = render_argv([sys.executable, str(child), "{workdir}"], {"workdir": str(workdir)})
    outcome = run_command(argv, cwd=tmp_path, env=_env(), workdir=workdir)
    assert outcome.metrics == {"val_loss": 0.25} and outcome.metrics_source == "metrics.json"


def test_stale_metrics_json_from_before_the_attempt_is_ignored(tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    stale = workdir / "metrics.json"
    stale.write_text(json.dumps({"val_loss": 0.01}))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    child = _script(tmp_path, "prints.py", "print('{\"val_loss\": 2.0}')\n")
    outcome = run_command([sys.executable, str(child)], cwd=tmp_path, env=_env(), workdir=workdir)
    assert outcome.metrics == {"val_loss": 2.0} and outcome.metrics_source == "stdout"
    child = _script(tmp_path, "silent.py", "pass\n")
    outcome = run_command([sys.executable, str(child)], cwd=tmp_path, env=_env(), workdir=workdir)
    assert outcome.metrics is None and outcome.metrics_source == ""


def test_environment_arrives_complete_and_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GASLURM_TEST_LEAK", "from the parent")
    workdir = tmp_path / "w"
    seen = tmp_path / "env.json"
    child = _script(
        tmp_path, "env.py", "import json, os, sys\nopen(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))\n"
    )
    env = command_environment(_env(MY_VAR="v a l"), name="gen3-ind7", workdir=workdir, seed=1234, attempt=2)
    assert env["GASLURM_WORKDIR"] == str(workdir.resolve()) and env["MY_VAR"] == "v a l"
    run_command([sys.executable, str(child), str(seen)], cwd=tmp_path, env=env, workdir=workdir)
    received = json.loads(seen.read_text())
    for key, value in {
        "GASLURM_EVAL_NAME": "gen3-ind7",
        "GASLURM_WORKDIR": str(workdir.resolve()),
        "GASLURM_SEED": "1234",
        "GASLURM_ATTEMPT": "2",
        "MY_VAR": "v a l",
    }.items():
        assert received[key] == value
    # exactly the environment given, nothing inherited (Python itself may add LC_CTYPE: PEP 538 locale coercion)
    assert set(received) - set(env) <= {"LC_CTYPE"} and "GASLURM_TEST_LEAK" not in received


def test_logs_are_appended_across_attempts_with_headers(tmp_path):
    workdir = tmp_path / "w"
    first = _script(tmp_path, "first.py", "import sys\nprint('{\"loss\": 1}')\nprint('err one', file=sys.stderr)\n")
    second = _script(tmp_path, "second.py", "import sys\nprint('out two', end='')\nprint('err two', file=sys.stderr)\n")
    one = run_command([sys.executable, str(first)], cwd=tmp_path, env=_env(), workdir=workdir)
    two = run_command([sys.executable, str(second)], cwd=tmp_path, env=_env(), workdir=workdir)
    third = run_command([sys.executable, str(first)], cwd=tmp_path, env=_env(), workdir=workdir)
    assert one.metrics == {"loss": 1.0} and third.metrics == {"loss": 1.0}
    assert two.metrics is None and two.stdout_tail == "out two" and two.stderr_tail == "err two\n"
    stdout = (workdir / "stdout.log").read_text()
    stderr = (workdir / "stderr.log").read_text()
    headers = [line for line in stdout.splitlines() if line.startswith("=== attempt started ")]
    assert len(headers) == 3 and all(line.endswith(" ===") for line in headers)
    assert stderr.count("=== attempt started ") == 3
    assert stdout.index('{"loss": 1}') < stdout.index("out two") < stdout.rindex('{"loss": 1}')
    assert "out two\n=== attempt started" in stdout  # a header starts a line even after an unfinished one
    assert stderr.index("err one") < stderr.index("err two")


def test_program_that_cannot_start_raises_and_is_noted(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_command([str(tmp_path / "no-such-program")], cwd=tmp_path, env=_env(), workdir=tmp_path / "w")
    assert "could not start" in (tmp_path / "w" / "stderr.log").read_text()


def test_timeout_takes_child_and_grandchild_down(tmp_path):
    pidfile = tmp_path / "pids"
    family = _script(tmp_path, "family.py", FAMILY)
    timeout_s, grace_s = 1.0, 5.0
    started = time.monotonic()
    outcome = run_command(
        [sys.executable, str(family), str(pidfile), "plain"],
        cwd=tmp_path,
        env=_env(),
        workdir=tmp_path / "w",
        timeout_s=timeout_s,
        grace_s=grace_s,
    )
    elapsed = time.monotonic() - started
    pids = _family_pids(pidfile)
    try:
        assert _still_alive(pids, within_s=0.5) == []
        assert outcome.timed_out and outcome.returncode is None
        assert timeout_s <= outcome.seconds <= elapsed
        # both die on SIGTERM: no need to sit out the grace
        assert elapsed < timeout_s + 2.5 < timeout_s + grace_s
        assert outcome.stdout_tail == "family started\n"
    finally:
        _kill_leftovers(pids)


def test_timeout_sigkills_what_ignores_sigterm_after_the_grace(tmp_path):
    pidfile = tmp_path / "pids"
    family = _script(tmp_path, "family.py", FAMILY)
    timeout_s, grace_s = 1.0, 0.7
    started = time.monotonic()
    outcome = run_command(
        [sys.executable, str(family), str(pidfile), "stubborn"],
        cwd=tmp_path,
        env=_env(),
        workdir=tmp_path / "w",
        timeout_s=timeout_s,
        grace_s=grace_s,
    )
    elapsed = time.monotonic() - started
    pids = _family_pids(pidfile)
    try:
        assert _still_alive(pids, within_s=0.5) == []
        assert outcome.timed_out and outcome.returncode is None
        assert timeout_s + grace_s <= elapsed < timeout_s + grace_s + 2.0
    finally:
        _kill_leftovers(pids)


def test_timeout_child_trapping_sigterm_exits_cleanly_within_the_grace(tmp_path):
    """Documented choice: its own exit status (0 here) is reported, with timed_out=True; not SIGKILLed."""
    pidfile = tmp_path / "pids"
    family = _script(tmp_path, "family.py", FAMILY)
    timeout_s, grace_s = 1.0, 5.0
    started = time.monotonic()
    outcome = run_command(
        [sys.executable, str(family), str(pidfile), "trap"],
        cwd=tmp_path,
        env=_env(),
        workdir=tmp_path / "w",
        timeout_s=timeout_s,
        grace_s=grace_s,
    )
    elapsed = time.monotonic() - started
    pids = _family_pids(pidfile)
    try:
        assert _still_alive(pids, within_s=0.5) == []
        assert outcome.timed_out and outcome.returncode == 0
        assert Path(f"{pidfile}.trapped").read_text() == "trapped"
        assert elapsed < timeout_s + 2.5
    finally:
        _kill_leftovers(pids)


@pytest.mark.parametrize("mode, grace_s, exc", [("plain", 5.0, SystemExit), ("stubborn", 0.5, KeyboardInterrupt)])
def test_interruption_takes_the_family_down_and_propagates(tmp_path, mode, grace_s, exc):
    assert threading.current_thread() is threading.main_thread()
    pidfile = tmp_path / "pids"
    family = _script(tmp_path, "family.py", FAMILY)

    def on_usr1(signum, frame):
        raise exc(f"interrupted by signal {signum}")

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGUSR1))
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(exc, match="interrupted by signal"):
            run_command(
                [sys.executable, str(family), str(pidfile), mode],
                cwd=tmp_path,
                env=_env(),
                workdir=tmp_path / "w",
                timeout_s=None,
                grace_s=grace_s,
            )
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
    elapsed = time.monotonic() - started
    pids = _family_pids(pidfile)
    try:
        assert _still_alive(pids, within_s=0.5) == []
        assert elapsed < 0.8 + (grace_s if mode == "stubborn" else 0.0) + 2.0
    finally:
        _kill_leftovers(pids)


def test_termination_handler_in_main_thread_raises_system_exit_143():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        install_termination_handler()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with pytest.raises(SystemExit) as info:
            handler(signal.SIGTERM, None)
        assert info.value.code == 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_termination_handler_from_another_thread_is_a_no_op():
    previous = signal.getsignal(signal.SIGTERM)
    errors: list[BaseException] = []

    def install() -> None:
        try:
            install_termination_handler()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert errors == [] and signal.getsignal(signal.SIGTERM) is previous


def test_worker_stopped_by_sigterm_takes_its_command_down(tmp_path):
    """A pool worker stopped with SIGTERM (a per-evaluation timeout) exits 143 and leaves no process behind."""
    pidfile = tmp_path / "pids"
    family = _script(tmp_path, "family.py", FAMILY)
    worker = _script(
        tmp_path,
        "worker.py",
        "import os, sys\nfrom pathlib import Path\n"
        "from workflow.objectives.process import install_termination_handler, run_command\n"
        "install_termination_handler()\n"
        f"run_command([sys.executable, {str(family)!r}, {str(pidfile)!r}, 'plain'], cwd=None,\n"
        f"            env={{'PATH': os.environ['PATH']}}, workdir=Path({str(tmp_path / 'w')!r}), grace_s=5.0)\n"
        "print('run_command returned')\n",
    )
    env = _env(PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(worker)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = _family_pids(pidfile)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 143, err.decode()
        assert b"run_command returned" not in out
        assert _still_alive(pids, within_s=1.0) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_leftovers(pids)
