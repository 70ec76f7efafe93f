"""Child processes of the integration tests and waiting for them.

`ManagedProcess` runs a program with stdout+stderr in a log file (stopped at
teardown, killed at exit as a safety net); `wait_until` polls (never fixed
sleeps) and fails early when the process it waits for has died;
`await_start` is the same for a process just started, which it stops when
the wait fails. Standard library only; imports nothing of ours.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]


def tail_file(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data[-lines:])


_ALL_PROCESSES: list["ManagedProcess"] = []


class ManagedProcess:
    """A child process whose stdout+stderr go to a log file; stopped at teardown."""

    def __init__(self, name: str, args: list[Any], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self._log.write(f"$ {' '.join(self.args)}\n".encode())
        self._log.flush()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
        _ALL_PROCESSES.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def tail(self, lines: int = 40) -> str:
        try:
            self._log.flush()
        except ValueError:  # already closed (the process was stopped)
            pass
        return tail_file(self.log_path, lines)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        try:
            self._log.close()
        except OSError:
            pass
        if self in _ALL_PROCESSES:
            _ALL_PROCESSES.remove(self)
        return self.proc.returncode


def live_processes() -> list[ManagedProcess]:
    return list(_ALL_PROCESSES)


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - safety net
    for p in list(_ALL_PROCESSES):
        try:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    proc: ManagedProcess | None = None,
) -> Any:
    """Poll `check` until it returns a truthy value; exceptions count as "not yet".

    Fails early when `proc` has exited. Raises TimeoutError naming `what` and
    the last failure otherwise.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with code {proc.returncode} while waiting for {what}\n"
                f"--- last lines of {proc.log_path} ---\n{proc.tail()}"
            )
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as e:  # noqa: BLE001 - polling
            last = e
        if time.monotonic() > deadline:
            extra = f"\n--- last lines of {proc.log_path} ---\n{proc.tail()}" if proc else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}{extra}")
        time.sleep(interval)


def await_start(proc: ManagedProcess, *checks: tuple[str, Callable[[], Any], float]) -> None:
    """Wait for a process just started: each (what, check, timeout) in turn
    (see wait_until). When one fails, the process is stopped and the error
    raised."""
    try:
        for what, check, timeout in checks:
            wait_until(what, check, timeout=timeout, proc=proc)
    except Exception:
        proc.stop()
        raise


def status_kib(pid: int, key: str) -> int:
    """A size from /proc/<pid>/status (VmRSS, VmHWM, ...) of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for pid {pid}")


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set size) of a live process, in KiB."""
    return status_kib(pid, "VmHWM")


def current_rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")
