"""Engines: in-process llama.cpp and OpenAI-compatible servers, on the real demo model first."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import httpx
import pytest

from scoring.providers import (
    PROVIDERS,
    Completion,
    Engine,
    EngineError,
    LlamaCppEngine,
    OpenAIEngine,
    demo_model_path,
    make_engine,
    resolve_api_key,
    response_format,
)


FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMO_STEM = "SmolLM2-135M-Instruct.Q4_1"

SCORE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": list(range(10))},
        "reasoning": {"type": "string", "maxLength": 40},
    },
    "required": ["score", "reasoning"],
}
# Room for the longest answer the schema allows (40 characters can be 40 tokens), so
# the JSON is never cut off by max_tokens.
SCHEMA_MAX_TOKENS = 64
RUBRIC = (
    "You score job listings from 0 (no fit) to 9 (perfect fit) for one person: a Python backend "
    "developer who lives in Berlin and may work anywhere in the EU. Answer with JSON only."
)


def arbeitnow_listings() -> list[dict]:
    """The recorded arbeitnow listings (Offenburg, Berlin, Remote)."""
    payload = json.loads((FIXTURES / "arbeitnow" / "arbeitnow_job-board-api_trimmed3.json").read_text(encoding="utf-8"))
    return payload["data"]


def listing_message(listing: dict, chars: int = 400) -> str:
    """A short plain-text rendering of a listing, as a strategy would send it."""
    from db import html_to_text

    text = html_to_text(listing["description"])[:chars]
    return f"Title: {listing['title']}\nCompany: {listing['company_name']}\nLocation: {listing['location']}\n\n{text}"


def score_messages(listing: dict, rubric: str = RUBRIC) -> list[dict]:
    return [{"role": "system", "content": rubric}, {"role": "user", "content": listing_message(listing)}]


def assert_score_json(completion: Completion) -> dict:
    """The completion's text is JSON matching SCORE_SCHEMA; returns it."""
    # llama-cpp-python's schema grammar lets raw control characters (newlines) into
    # strings, which strict JSON forbids; everything else about the output is valid.
    answer = json.loads(completion.text, strict=False)
    assert set(answer) == {"score", "reasoning"}
    assert isinstance(answer["score"], int) and 0 <= answer["score"] <= 9
    assert isinstance(answer["reasoning"], str) and len(answer["reasoning"]) <= 40
    return answer


def assert_same_alternatives(ours: dict[str, float], theirs: dict[str, float], abs_tol: float = 0.05) -> None:
    """Two top-n rows agree: shared tokens have close logprobs, and a token only one side lists
    sits at the other side's cut-off (a near tie for the last place).

    Callers compare prompts that neither side has cached: llama.cpp computes a Q4 model's
    activations differently for a long batch than for one token at a time, so the same
    position read from a cached prefix can move by ~0.2 nat.
    """
    assert len(ours) == len(theirs)
    for token in ours.keys() & theirs.keys():
        assert ours[token] == pytest.approx(theirs[token], abs=abs_tol)
    for row, other in ((ours, theirs), (theirs, ours)):
        for token in row.keys() - other.keys():
            assert row[token] == pytest.approx(min(other.values()), abs=abs_tol)


def assert_top_logprobs(rows, completion_tokens: int, n: int) -> None:
    """One row per generated token, at most n alternatives each, real log-probabilities, likeliest first."""
    assert rows is not None and len(rows) == completion_tokens
    assert len(rows[0]) == n
    for row in rows:
        assert 1 <= len(row) <= n
        values = list(row.values())
        assert all(v <= 0.0 for v in values)
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-6


# --- the demo model -----------------------------------------------------------------------


def test_demo_model_path_finds_the_bundled_gguf(demo_model):
    path = Path(demo_model_path())
    assert path.name == f"{DEMO_STEM}.gguf"
    assert path == Path(demo_model)
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"


# --- in-process llama.cpp -----------------------------------------------------------------


@pytest.mark.engine
def test_llamacpp_schema_output_is_valid_json(llamacpp_engine):
    berlin = arbeitnow_listings()[1]
    completion = llamacpp_engine.complete(score_messages(berlin), json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS)
    assert_score_json(completion)
    assert completion.model == DEMO_STEM
    assert llamacpp_engine.is_demo and llamacpp_engine.provider == "llamacpp"
    assert completion.prompt_tokens > 50 and completion.completion_tokens > 0
    assert completion.latency_ms > 0
    assert completion.top_logprobs is None
    assert completion.cached_tokens is not None and 0 <= completion.cached_tokens < completion.prompt_tokens


@pytest.mark.engine
def test_llamacpp_top_logprobs_match_llama_cpp_own_logprobs(llamacpp_engine, demo_model):
    """The recorder reports what llama-cpp-python's logits_all path reports, without its cost."""
    from llama_cpp import Llama

    # A prompt that diverges from every other test's at its first words: nothing cached.
    messages = score_messages(arbeitnow_listings()[1], "Logprob check. " + RUBRIC)
    completion = llamacpp_engine.complete(messages, json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS, top_logprobs=3)
    assert_top_logprobs(completion.top_logprobs, completion.completion_tokens, 3)

    reference = Llama(model_path=demo_model, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    try:
        expected = reference.create_chat_completion(
            messages=messages, max_tokens=SCHEMA_MAX_TOKENS, temperature=0.0, logprobs=True, top_logprobs=3,
            response_format={"type": "json_object", "schema": SCORE_SCHEMA},
        )
    finally:
        reference.close()
    assert json.loads(expected["choices"][0]["message"]["content"], strict=False)["score"] == assert_score_json(completion)["score"]
    for ours, theirs in zip(completion.top_logprobs[:5], expected["choices"][0]["logprobs"]["content"][:5]):
        top3 = sorted(theirs["top_logprobs"], key=lambda alt: -alt["logprob"])[:3]
        assert_same_alternatives(ours, {alt["token"]: float(alt["logprob"]) for alt in top3})


@pytest.mark.engine
def test_llamacpp_engines_on_one_path_share_one_model(llamacpp_engine, demo_model):
    again = LlamaCppEngine(demo_model)
    demo = LlamaCppEngine()
    assert again.llama is llamacpp_engine.llama
    assert demo.llama is llamacpp_engine.llama
    assert demo.is_demo and demo.model == DEMO_STEM


@pytest.mark.engine
def test_llamacpp_reuses_the_kv_cache_for_a_shared_prefix(llamacpp_engine):
    import llama_cpp

    offenburg, berlin, _ = arbeitnow_listings()
    # A prefix that diverges from every other test's at its first words, long enough
    # that reuse is unmistakable.
    prefix = "KV reuse check. " + RUBRIC + " Criteria, in order of weight: " + ", ".join(
        f"criterion {i}: the listing names Python, Django, FastAPI or PostgreSQL work" for i in range(12)
    )
    llama = llamacpp_engine.llama
    prefix_tokens = len(llama.tokenize(prefix.encode(), add_bos=False))
    assert prefix_tokens > 200

    first = llamacpp_engine.complete(score_messages(offenburg, prefix), json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS)
    llama_cpp.llama_perf_context_reset(llama.ctx)
    second = llamacpp_engine.complete(score_messages(berlin, prefix), json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS)
    perf = llama_cpp.llama_perf_context(llama.ctx)

    assert first.cached_tokens < 20  # only the chat template's opening is shared with earlier prompts
    assert second.cached_tokens >= prefix_tokens
    # What llama.cpp actually decoded: the uncached prompt tail plus the generated tokens.
    decoded = perf.n_p_eval + perf.n_eval
    assert decoded <= second.prompt_tokens - second.cached_tokens + second.completion_tokens + 1
    assert decoded < second.prompt_tokens


@pytest.mark.engine
def test_llamacpp_concurrent_calls_on_a_shared_model_are_serialized(llamacpp_engine, demo_model):
    listings = arbeitnow_listings()
    engines = [llamacpp_engine, LlamaCppEngine(demo_model)]
    results: dict[int, Completion] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = engines[i].complete(score_messages(listings[i]), json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS)
        except BaseException as exc:  # a thread's failure must reach the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for completion in results.values():
        assert_score_json(completion)
    assert len(results) == 2


@pytest.mark.engine
def test_llamacpp_prompt_longer_than_context_is_an_engine_error(demo_model):
    small = LlamaCppEngine(demo_model, n_ctx=256, n_threads=2)
    too_long = [{"role": "user", "content": listing_message(arbeitnow_listings()[2], chars=3000)}]
    with pytest.raises(EngineError, match=r"exceed context window of 256"):
        small.complete(too_long)
    # The model stays usable after the refusal.
    assert small.complete([{"role": "user", "content": "Say hi."}], max_tokens=4).completion_tokens > 0


def test_llamacpp_missing_model_file_is_an_engine_error(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(EngineError, match="model file not found") as info:
        LlamaCppEngine(str(missing))
    assert str(missing) in str(info.value)


@pytest.mark.engine
def test_llamacpp_file_that_is_not_a_model_is_an_engine_error(tmp_path):
    junk = tmp_path / "listing.gguf"
    junk.write_text("this is a job listing, not a GGUF model\n" * 20)
    engine = LlamaCppEngine(str(junk))
    assert not engine.is_demo and engine.model == "listing"
    with pytest.raises(EngineError, match="cannot load model") as info:
        engine.complete([{"role": "user", "content": "hi"}])
    assert str(junk) in str(info.value)


@pytest.mark.parametrize("schema, problem", [
    ({"type": "object", "properties": {"score": {"type": "bogus"}}}, "Unrecognized schema"),
    ({"type": "object", "properties": {"quote": {"type": "string", "pattern": "[a-z]+"}}}, 'Pattern must start with "^"'),
])
def test_llamacpp_refuses_a_schema_it_cannot_enforce(demo_model, schema, problem):
    engine = LlamaCppEngine(demo_model)
    with pytest.raises(ValueError, match="json_schema cannot be enforced by llama.cpp") as info:
        engine.complete([{"role": "user", "content": "hi"}], json_schema=schema)
    assert problem in str(info.value)


def test_malformed_messages_are_rejected_before_any_work(demo_model):
    engine = LlamaCppEngine(demo_model)
    with pytest.raises(ValueError, match="non-empty list"):
        engine.complete([])
    with pytest.raises(ValueError, match=r"messages\[1\]"):
        engine.complete([{"role": "user", "content": "hi"}, {"role": "user"}])
    with pytest.raises(ValueError, match="max_tokens"):
        engine.complete([{"role": "user", "content": "hi"}], max_tokens=0)


# --- a real llama_cpp.server ----------------------------------------------------------------


@pytest.mark.engine
def test_openai_engine_on_llama_cpp_server(openai_engine, llama_server, demo_model):
    listed = httpx.get(f"{llama_server}/models").json()["data"][0]["id"]
    assert openai_engine.model == listed
    assert openai_engine.is_demo

    completion = openai_engine.complete(score_messages(arbeitnow_listings()[1]), json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS)
    assert_score_json(completion)
    assert completion.model == listed
    assert completion.prompt_tokens > 50 and completion.completion_tokens > 0
    assert completion.top_logprobs is None
    # llama_cpp.server rejects the OpenAI json_schema form; the engine switched and stays switched.
    assert openai_engine.schema_form == "json_object"


@pytest.mark.engine
def test_openai_engine_logprobs_agree_with_the_in_process_engine(openai_engine, llamacpp_engine):
    messages = score_messages(arbeitnow_listings()[0], "Cross-engine check. " + RUBRIC)
    remote = openai_engine.complete(messages, json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS, top_logprobs=3)
    local = llamacpp_engine.complete(messages, json_schema=SCORE_SCHEMA, max_tokens=SCHEMA_MAX_TOKENS, top_logprobs=3)
    assert_top_logprobs(remote.top_logprobs, remote.completion_tokens, 3)
    # Up to the score both decode the same forced JSON opening; past it a near tie in
    # the free-text reasoning may go either way, so only the score is compared.
    assert assert_score_json(remote)["score"] == assert_score_json(local)["score"]
    for theirs, ours in zip(remote.top_logprobs[:5], local.top_logprobs[:5]):
        assert_same_alternatives(ours, theirs)


@pytest.mark.engine
def test_openai_engine_reports_a_stopped_server(demo_model, start_llama_server):
    with start_llama_server(demo_model) as server:
        engine = OpenAIEngine(base_url=server.base_url, timeout=30.0)
        assert engine.complete([{"role": "user", "content": "Say hi."}], max_tokens=4).completion_tokens > 0
        server.stop()
        with pytest.raises(EngineError) as info:
            engine.complete([{"role": "user", "content": "Say hi."}], max_tokens=4)
    message = str(info.value)
    assert f"{server.base_url}/chat/completions" in message
    assert "cannot reach the server" in message and "ConnectError" in message


# --- edge cases on a mocked transport --------------------------------------------------------

MODELS = (FIXTURES / "llamacpp" / "llama_cpp_server_models.json").read_bytes()
CHAT = (FIXTURES / "llamacpp" / "llama_cpp_server_chat_json_logprobs.json").read_bytes()
REJECTED_500 = (FIXTURES / "llamacpp" / "llama_cpp_server_500_json_schema_form.json").read_bytes()
# llama.cpp's own server (builds before json_schema support) answers the OpenAI form so.
REJECTED_400 = json.dumps({"error": {
    "code": 400, "type": "invalid_request_error",
    "message": 'response_format type must be one of "text" or "json_object", but got: json_schema',
}}).encode()


def mocked(handler, **kwargs) -> OpenAIEngine:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAIEngine(base_url="http://127.0.0.1:9/v1", client=client, **kwargs)


def recording(responses: list[httpx.Response]):
    """A handler that answers in turn with `responses` and keeps the requests it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, content=MODELS)
        return responses.pop(0)

    return handler, seen


def chat_bodies(seen: list[httpx.Request]) -> list[dict]:
    return [json.loads(r.content) for r in seen if r.url.path.endswith("/chat/completions")]


MESSAGES = [{"role": "user", "content": "Quereinsteiger: Redaktion, Marketing, Vertrieb (m/w/d) - Berlin"}]


def test_recorded_server_answer_is_read_fully():
    handler, seen = recording([httpx.Response(200, content=CHAT)])
    engine = mocked(handler, model="smol")
    completion = engine.complete(MESSAGES, max_tokens=40, top_logprobs=3)
    recorded = json.loads(CHAT)
    assert completion.text == recorded["choices"][0]["message"]["content"]
    assert completion.prompt_tokens == recorded["usage"]["prompt_tokens"]
    assert completion.completion_tokens == recorded["usage"]["completion_tokens"]
    assert completion.model == "smol"
    assert completion.cached_tokens is None
    # The server appends the sampled token to the top 3; only the 3 likeliest are kept.
    assert len(recorded["choices"][0]["logprobs"]["content"][0]["top_logprobs"]) == 4
    assert_top_logprobs(completion.top_logprobs, len(recorded["choices"][0]["logprobs"]["content"]), 3)
    first = recorded["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert list(completion.top_logprobs[0]) == [alt["token"] for alt in sorted(first, key=lambda a: -a["logprob"])[:3]]
    body = chat_bodies(seen)[0]
    assert body["model"] == "smol" and body["logprobs"] is True and body["top_logprobs"] == 3
    assert "response_format" not in body


def test_model_is_discovered_from_the_models_list():
    handler, seen = recording([httpx.Response(200, content=CHAT)])
    engine = mocked(handler)
    engine.complete(MESSAGES, max_tokens=40)
    listed = json.loads(MODELS)["data"][0]["id"]
    assert engine.model == listed and engine.is_demo
    assert chat_bodies(seen)[0]["model"] == listed
    assert [r.url.path for r in seen].count("/v1/models") == 1


def test_empty_models_list_is_an_engine_error():
    engine = mocked(lambda request: httpx.Response(200, json={"object": "list", "data": []}))
    with pytest.raises(EngineError, match="lists no model; set scoring.model"):
        engine.complete(MESSAGES)


def test_timeout_is_an_engine_error():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    engine = mocked(handler, model="smol", timeout=3)
    with pytest.raises(EngineError, match=r"http://127.0.0.1:9/v1/chat/completions: no answer within 3 s \(ReadTimeout\)"):
        engine.complete(MESSAGES)


def test_server_error_is_an_engine_error_with_its_message():
    body = {"error": {"message": "llama_decode returned -3", "type": "internal_server_error"}}
    engine = mocked(lambda request: httpx.Response(500, json=body), model="smol")
    with pytest.raises(EngineError, match=r"chat/completions: HTTP 500: llama_decode returned -3"):
        engine.complete(MESSAGES)


def test_wrong_base_url_gets_a_hint():
    engine = mocked(lambda request: httpx.Response(404, text="Not Found"), model="smol")
    with pytest.raises(EngineError, match=r"HTTP 404 \(base_url usually ends in /v1\): Not Found"):
        engine.complete(MESSAGES)


def test_non_json_body_is_an_engine_error():
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    engine = mocked(lambda request: httpx.Response(200, text=page), model="smol")
    with pytest.raises(EngineError, match="response is not JSON") as info:
        engine.complete(MESSAGES)
    assert "502 Bad Gateway" in str(info.value)


def test_answer_without_choices_is_an_engine_error():
    engine = mocked(lambda request: httpx.Response(200, json={"object": "chat.completion", "choices": []}), model="smol")
    with pytest.raises(EngineError, match=r"unusable response, no choices\[0\]\.message"):
        engine.complete(MESSAGES)


@pytest.mark.parametrize("rejection", [
    httpx.Response(400, content=REJECTED_400),
    httpx.Response(500, content=REJECTED_500),
], ids=["llama.cpp-400", "llama_cpp.server-500"])
def test_rejected_schema_form_is_retried_once_in_the_other_form_and_remembered(rejection):
    handler, seen = recording([rejection, httpx.Response(200, content=CHAT), httpx.Response(200, content=CHAT)])
    engine = mocked(handler, model="smol")
    first = engine.complete(MESSAGES, json_schema=SCORE_SCHEMA, max_tokens=40)
    second = engine.complete(MESSAGES, json_schema=SCORE_SCHEMA, max_tokens=40)
    assert first.text == second.text == json.loads(CHAT)["choices"][0]["message"]["content"]
    formats = [body["response_format"] for body in chat_bodies(seen)]
    assert formats == [
        {"type": "json_schema", "json_schema": {"name": "response", "schema": SCORE_SCHEMA, "strict": True}},
        {"type": "json_object", "schema": SCORE_SCHEMA},
        {"type": "json_object", "schema": SCORE_SCHEMA},
    ]


def test_schema_rejected_in_both_forms_is_an_engine_error():
    handler, seen = recording([httpx.Response(400, content=REJECTED_400), httpx.Response(400, content=REJECTED_400)])
    engine = mocked(handler, model="smol")
    with pytest.raises(EngineError, match="accepts neither response_format form") as info:
        engine.complete(MESSAGES, json_schema=SCORE_SCHEMA)
    assert "json_schema: HTTP 400" in str(info.value) and "json_object: HTTP 400" in str(info.value)
    assert len(chat_bodies(seen)) == 2
    assert engine.schema_form == "json_schema"


def test_server_error_unrelated_to_the_schema_is_not_retried():
    body = {"error": {"message": "model is loading", "type": "unavailable"}}
    handler, seen = recording([httpx.Response(503, json=body)])
    engine = mocked(handler, model="smol")
    with pytest.raises(EngineError, match="HTTP 503: model is loading"):
        engine.complete(MESSAGES, json_schema=SCORE_SCHEMA)
    assert len(chat_bodies(seen)) == 1


def test_cached_tokens_are_read_where_the_server_reports_them():
    recorded = json.loads(CHAT)
    openai_style = dict(recorded, usage=dict(recorded["usage"], prompt_tokens_details={"cached_tokens": 33}))
    llama_cpp_style = dict(recorded, timings={"cache_n": 41, "prompt_n": 9, "predicted_n": 12})
    handler, _ = recording([httpx.Response(200, json=openai_style), httpx.Response(200, json=llama_cpp_style)])
    engine = mocked(handler, model="smol")
    assert engine.complete(MESSAGES).cached_tokens == 33
    assert engine.complete(MESSAGES).cached_tokens == 41


def test_response_format_forms():
    assert response_format(SCORE_SCHEMA, "json_object") == {"type": "json_object", "schema": SCORE_SCHEMA}
    assert response_format(SCORE_SCHEMA, "json_schema")["json_schema"]["schema"] == SCORE_SCHEMA
    with pytest.raises(ValueError, match="unknown response_format form"):
        response_format(SCORE_SCHEMA, "grammar")


# --- make_engine --------------------------------------------------------------------------


def test_make_engine_defaults_to_the_in_process_demo_model(demo_model):
    engine = make_engine({})
    assert isinstance(engine, LlamaCppEngine) and engine.is_demo
    assert engine.model_path == str(Path(demo_model).resolve())


def test_make_engine_llamacpp_with_a_model_path(tmp_path, demo_model):
    engine = make_engine({"local_provider": "llamacpp", "model_path": demo_model, "n_ctx": "2048", "n_threads": 2})
    assert isinstance(engine, LlamaCppEngine)
    assert (engine.n_ctx, engine.n_threads) == (2048, 2)
    with pytest.raises(EngineError, match="model file not found"):
        make_engine({"local_provider": "llamacpp", "model_path": str(tmp_path / "missing.gguf")})


def test_make_engine_openai_with_a_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("JOBSIFT_TEST_LLM_KEY", "sk-local-123")
    settings = {
        "local_provider": "OpenAI", "base_url": "http://127.0.0.1:11434/v1/", "model": "qwen2.5-coder:1.5b",
        "api_key_env": "JOBSIFT_TEST_LLM_KEY", "timeout": "30",
    }
    engine = make_engine(settings)
    assert isinstance(engine, OpenAIEngine)
    assert (engine.base_url, engine.model, engine.timeout) == ("http://127.0.0.1:11434/v1", "qwen2.5-coder:1.5b", 30.0)
    assert not engine.is_demo
    assert resolve_api_key(settings) == "sk-local-123"
    assert resolve_api_key({"local_provider": "openai"}) is None


def test_api_key_is_sent_as_a_bearer_token():
    handler, seen = recording([httpx.Response(200, content=CHAT)])
    engine = mocked(handler, model="smol", api_key="sk-local-123")
    engine.complete(MESSAGES)
    assert seen[0].headers["authorization"] == "Bearer sk-local-123"
    handler, seen = recording([httpx.Response(200, content=CHAT)])
    mocked(handler, model="smol").complete(MESSAGES)
    assert "authorization" not in seen[0].headers


def test_make_engine_names_a_missing_key_variable(monkeypatch):
    monkeypatch.delenv("JOBSIFT_TEST_LLM_KEY", raising=False)
    with pytest.raises(ValueError, match="JOBSIFT_TEST_LLM_KEY.*not set"):
        make_engine({"local_provider": "openai", "api_key_env": "JOBSIFT_TEST_LLM_KEY"})


@pytest.mark.parametrize("settings, message", [
    ({"local_provider": "ollama"}, r"unknown scoring.local_provider 'ollama'; choose one of: llamacpp, openai"),
    ({"local_provider": "openai", "timeout": "soon"}, r"scoring.timeout must be a number of seconds, got 'soon'"),
    ({"local_provider": "openai", "timeout": 0}, r"scoring.timeout must be positive"),
    ({"local_provider": "openai", "base_url": "localhost:8080"}, r"base_url must be an http\(s\) URL"),
    ({"local_provider": "llamacpp", "n_ctx": "big"}, r"scoring.n_ctx must be a whole number, got 'big'"),
])
def test_make_engine_rejects_bad_settings_clearly(settings, message):
    with pytest.raises(ValueError, match=message):
        make_engine(settings)


def test_make_engine_builds_any_registered_provider(monkeypatch):
    class EchoEngine(Engine):
        provider = "echo"
        model = "echo"
        is_demo = False

        def __init__(self, prefix: str = ""):
            self.prefix = prefix

        @classmethod
        def from_settings(cls, settings):
            return cls(prefix=settings.get("model", ""))

        def complete(self, messages, *, json_schema=None, max_tokens=128, temperature=0.0, top_logprobs=0):
            text = self.prefix + messages[-1]["content"]
            return Completion(text=text, model=self.model, prompt_tokens=1, completion_tokens=1, latency_ms=0)

    monkeypatch.setitem(PROVIDERS, "echo", EchoEngine)
    engine = make_engine({"local_provider": "echo", "model": "> "})
    assert engine.complete([{"role": "user", "content": "hi"}]).text == "> hi"
    assert set(PROVIDERS) >= {"llamacpp", "openai"}
