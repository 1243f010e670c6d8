"""The real chat app, `python app.py`, run as a subprocess on a free loopback port for a benchmark.

The app reads its index folder and port from the environment (`ASSISTANT_INDEX_DIR`,
`GRADIO_SERVER_PORT`), so a benchmark points it at an index it built in a temporary folder and
never touches the repository's `indexes/`.

    >>> with served_app(index_dir, REPO / "corpus", scratch) as app:  # doctest: +SKIP
    ...     print(app.url, app.started_s, app.rss_mib())
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, whatever the environment says


def shown(path: Path) -> str:
    """A path as the figures name it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def page_status(url: str) -> int | None:
    """The HTTP status of `url`, or None while nothing answers there."""
    try:
        with _NO_PROXY.open(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log, for an error message (the log itself goes with its temporary folder)."""
    return path.read_text(errors="replace")[-chars:]


@dataclass
class ServedApp:
    """A running `python app.py`: its URL, its process, and how long it took to serve the page."""

    process: subprocess.Popen[bytes]
    url: str
    started_s: float

    def _status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"/proc/{self.process.pid}/status has no {field}")

    def rss_mib(self) -> float:
        """Resident memory of the server process now (VmRSS)."""
        return self._status_kib("VmRSS") / 1024

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (user + system, from /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, quiet_s: float = 3.0, timeout_s: float = 600.0) -> float:
        """Wait until the server has used almost no CPU for `quiet_s` (its background start-up is done).

        Returns the seconds waited. The app opens the index and loads the question encoder in the
        background once it serves; memory measured before that ends would count the start-up as growth.
        """
        began = time.perf_counter()
        while time.perf_counter() - began < timeout_s:
            used = self.cpu_s()
            time.sleep(quiet_s)
            if self.cpu_s() - used < 0.05 * quiet_s:
                break
        return time.perf_counter() - began

    def peak_rss_mib(self) -> float:
        """The most resident memory the server process has had (VmHWM)."""
        return self._status_kib("VmHWM") / 1024


@contextmanager
def served_app(index_dir: Path, corpus_dir: Path, scratch: Path, timeout_s: float = 60.0,
               extra_env: dict[str, str] | None = None, script: Path = REPO / "app.py") -> Iterator[ServedApp]:
    """Start the app on a free loopback port and wait for its page to answer 200; stop it on exit.

    `started_s` is the time from launching the process to the first 200 on `/`: the interpreter
    starting, the imports, `build_app` and Gradio's launch. The index opens in the background after
    that, so the first question may still be told to wait. The app's output goes to `scratch/app.log`,
    and its feedback file, should anything be liked, to `scratch/feedback.jsonl`. `script` may name
    another revision of `app.py` (say, from `git show`), run from the repository root all the same.
    """
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ASSISTANT_INDEX_DIR": str(index_dir),
        "ASSISTANT_CORPUS_DIR": str(corpus_dir),
        "ASSISTANT_SERVE__FEEDBACK_PATH": str(scratch / "feedback.jsonl"),
        **(extra_env or {}),
    }
    url = f"http://127.0.0.1:{port}/"
    log_path = scratch / "app.log"
    with open(log_path, "wb") as log:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            while page_status(url) != 200:
                if process.poll() is not None:
                    raise RuntimeError(f"app.py exited with {process.returncode}:\n{tail(log_path)}")
                if time.perf_counter() - began > timeout_s:
                    raise TimeoutError(f"app.py served no page within {timeout_s:.0f} s:\n{tail(log_path)}")
                time.sleep(0.05)
            yield ServedApp(process, url, time.perf_counter() - began)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
