"""Benchmark: what a shared, cached prompt prefix saves per listing on a local engine.

    python -m bench.engine [--model PATH] [--provider llamacpp|openai] [--base-url URL] [--runs 3]

Each call sends a ~1,300-token shared prefix (rubric, profile, scored examples) and a
~300-token listing (real Remotive listings), and asks for ~30 tokens of JSON-schema
output. Cold calls alternate two prefixes that differ from their first words, so no
prefix is in the KV cache; warm calls repeat one prefix with new listings. Prints each
call, the medians, the warm/cold ratio, prompt tokens/s and generated tokens/s.

--provider llamacpp (default) runs the model in this process (the demo model unless
--model is given). --provider openai goes through an OpenAI-compatible server: the one
at --base-url, or else a `python -m llama_cpp.server` started here on --model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import db as storage
from scoring.providers import Completion, Engine, LlamaCppEngine, OpenAIEngine, demo_model_path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
N_CTX = 4096
LISTING_CHARS = 1150  # about 300 tokens of English
EXAMPLE_COUNT = 15  # scored examples in the prefix; with the rubric, about 1,300 tokens

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "reasoning": {"type": "string", "maxLength": 140},
    },
    "required": ["score", "reasoning"],
}
MAX_TOKENS = 64  # about 30 used; the cap only stops a model that rambles

RUBRIC = """Score how well a job listing fits the person below, from 0 (no fit) to 100 (apply today).
Weigh, in order: whether the person may take the job from where they live (location, remote
region, time zone, visa); whether the role is hands-on software engineering in the person's
stack; seniority; the domain; pay, when stated. A listing the person cannot take scores at
most 10, however good the role. Sales, marketing, support and recruiting roles score at most
15. Quote the listing, never invent facts. Answer with JSON only: the score, then one
sentence of reasoning of about twenty words."""

PROFILE_A = """You score job listings for one person, a backend engineer.
The person lives in Berlin, Germany, may work in any EU country without a visa and works in
UTC+1. Eight years of Python (Django, FastAPI, Celery), PostgreSQL, Redis, Kafka, Kubernetes on
AWS; some Go. Led a team of four on a data platform that ingests 2 TB a day. Wants: backend,
data or ML platform roles, remote within the EU or hybrid in Berlin, senior or staff level,
product companies over agencies. Does not want: frontend-only work, on-call heavy SRE roles,
crypto, gambling, defence."""

# Differs from PROFILE_A from its first word on, so a call with one prefix finds
# nothing of the other in the KV cache.
PROFILE_B = """Rate each job posting for a single candidate, an infrastructure engineer.
She is based in Lisbon, Portugal, holds an EU passport and works in UTC+0. Six years of Go
and Python, Terraform, Kubernetes, GCP and AWS, Prometheus and Grafana; some Rust. Built the
deployment pipeline of a 200-engineer company. Wants: platform, infrastructure or developer
tooling roles, fully remote in Europe, senior level, companies with an engineering blog.
Does not want: people management, frontend work, 24/7 pager rotations, ad tech."""


@dataclass
class Call:
    """One timed call and, in process, llama.cpp's own prompt and generation counters."""

    phase: str
    prefix: str
    completion: Completion
    prompt_eval_ms: float | None = None
    prompt_eval_tokens: int | None = None


def remotive_listings() -> list[dict]:
    """The recorded Remotive listings that have a description."""
    raw = (FIXTURES / "remotive" / "remotive_all_2026-07.json").read_bytes().decode("utf-8-sig")
    return [job for job in json.loads(raw)["jobs"] if job.get("description")]


def listing_text(job: dict) -> str:
    """A listing as a strategy would send it: header lines and the start of the plain text."""
    body = storage.html_to_text(job["description"])[:LISTING_CHARS]
    return (f"Title: {job['title']}\nCompany: {job['company_name']}\n"
            f"Location: {job.get('candidate_required_location') or 'not stated'}\n\n{body}")


def prefix(profile: str, examples: list[dict]) -> str:
    """The shared system prompt: profile, rubric, then scored examples in a fixed order."""
    shown = []
    for job in examples:
        location = job.get("candidate_required_location") or "not stated"
        verdict = {"score": 8 if "Engineer" in job["title"] else 3, "reasoning": f"{job['category']} role, {location}."}
        shown.append(f"Listing: {job['title']} at {job['company_name']} ({location}); "
                     f"tags: {', '.join(job.get('tags') or [])[:160]}\nAnswer: {json.dumps(verdict)}")
    return f"{profile}\n\n{RUBRIC}\n\nScored examples:\n\n" + "\n\n".join(shown)


def _perf(engine: Engine):
    if not isinstance(engine, LlamaCppEngine):
        return None
    import llama_cpp

    return llama_cpp, engine.llama.ctx


def timed_call(engine: Engine, phase: str, name: str, system: str, job: dict) -> Call:
    """Complete one listing, reading llama.cpp's counters when the model runs in process."""
    perf = _perf(engine)
    if perf:
        perf[0].llama_perf_context_reset(perf[1])
    messages = [{"role": "system", "content": system}, {"role": "user", "content": listing_text(job)}]
    completion = engine.complete(messages, json_schema=OUTPUT_SCHEMA, max_tokens=MAX_TOKENS)
    call = Call(phase, name, completion)
    if perf:
        data = perf[0].llama_perf_context(perf[1])
        call.prompt_eval_ms, call.prompt_eval_tokens = data.t_p_eval_ms, data.n_p_eval
    return call


def print_call(call: Call) -> None:
    """One line per call."""
    c = call.completion
    cached = "?" if c.cached_tokens is None else str(c.cached_tokens)
    extra = ""
    if call.prompt_eval_ms is not None:
        extra = f"  prompt eval {call.prompt_eval_tokens} tok in {call.prompt_eval_ms / 1000:.2f} s"
    print(f"{call.phase:4} {call.prefix}  prompt {c.prompt_tokens:5} tok (cached {cached:>5})  "
          f"output {c.completion_tokens:3} tok  {c.latency_ms / 1000:7.2f} s{extra}", flush=True)


def summarize(cold: list[Call], warm: list[Call], prefix_tokens: int | None) -> dict:
    """Medians, the warm/cold ratio and the token rates."""
    cold_s = statistics.median(c.completion.latency_ms for c in cold) / 1000
    warm_s = statistics.median(c.completion.latency_ms for c in warm) / 1000
    out = {"cold_s": cold_s, "warm_s": warm_s, "ratio": warm_s / cold_s}
    if all(c.prompt_eval_ms for c in cold + warm):
        # In process: llama.cpp's own prompt counters, and the rest of each call is generation.
        calls = cold + warm
        out["prompt_tps"] = sum(c.prompt_eval_tokens for c in calls) / (sum(c.prompt_eval_ms for c in calls) / 1000)
        gen_s = sum(c.completion.latency_ms - c.prompt_eval_ms for c in calls) / 1000
        out["gen_tps"] = sum(c.completion.completion_tokens for c in calls) / gen_s
        out["rates_from"] = "llama.cpp counters"
        return out
    # Over HTTP: the cold-warm difference is the time to read the cached part of the prefix.
    if prefix_tokens and cold_s > warm_s:
        out["prompt_tps"] = prefix_tokens / (cold_s - warm_s)
        warm_uncached = statistics.median(c.completion.prompt_tokens for c in warm) - prefix_tokens
        gen_s = warm_s - warm_uncached / out["prompt_tps"]
        if gen_s > 0:
            out["gen_tps"] = statistics.median(c.completion.completion_tokens for c in warm) / gen_s
        out["rates_from"] = "cold-warm difference (estimate)"
    return out


@contextlib.contextmanager
def open_engine(args) -> Engine:
    """The engine the arguments ask for; a llama_cpp.server started here is stopped on exit."""
    if args.provider == "llamacpp":
        engine = LlamaCppEngine(args.model, n_ctx=N_CTX, n_threads=args.threads)
        engine.load()
        yield engine
        return
    if args.base_url:
        engine = OpenAIEngine(base_url=args.base_url, timeout=args.timeout)
        yield engine
        engine.close()
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from engine import LlamaServer  # the tests' launcher: one way to start the server

    server = LlamaServer(args.model or demo_model_path(), n_ctx=N_CTX, n_threads=args.threads)
    try:
        server.wait_ready()
        engine = OpenAIEngine(base_url=server.base_url, timeout=args.timeout)
        yield engine
        engine.close()
    finally:
        server.stop()


def run(args) -> dict:
    """Run the cold and warm calls and print the figures."""
    jobs = remotive_listings()
    examples, listings = jobs[:EXAMPLE_COUNT], jobs[EXAMPLE_COUNT:]
    prefixes = {"A": prefix(PROFILE_A, examples), "B": prefix(PROFILE_B, examples)}
    if len(listings) < 2 * args.runs:
        raise SystemExit(f"need {2 * args.runs} listings beyond the examples, have {len(listings)}")
    with open_engine(args) as engine:
        print(f"engine: {engine.provider}, model {engine.model}", flush=True)
        prefix_tokens = None
        if isinstance(engine, LlamaCppEngine):
            prefix_tokens = len(engine.llama.tokenize(prefixes["A"].encode(), add_bos=False))
        else:
            # Prefix B's own length, read from the server; B also leaves A uncached for the first cold call.
            probe = engine.complete([{"role": "system", "content": prefixes["B"]}, {"role": "user", "content": "."}],
                                    max_tokens=1)
            prefix_tokens = probe.prompt_tokens
        print(f"shared prefix: about {prefix_tokens} tokens", flush=True)
        cold = []
        for i in range(args.runs):
            name = "A" if i % 2 == 0 else "B"
            cold.append(timed_call(engine, "cold", name, prefixes[name], listings[i]))
            print_call(cold[-1])
        if cold[-1].prefix != "A":
            timed_call(engine, "prime", "A", prefixes["A"], listings[-1])
        warm = []
        for i in range(args.runs):
            warm.append(timed_call(engine, "warm", "A", prefixes["A"], listings[args.runs + i]))
            print_call(warm[-1])
    print(f"last answer: {warm[-1].completion.text}")
    figures = summarize(cold, warm, prefix_tokens)
    print(f"\nmedian cold {figures['cold_s']:.2f} s, warm {figures['warm_s']:.2f} s, "
          f"warm/cold {figures['ratio']:.2f}")
    if "prompt_tps" in figures:
        gen = f"{figures['gen_tps']:.1f}" if "gen_tps" in figures else "n/a"
        print(f"prompt {figures['prompt_tps']:.0f} tokens/s, generation {gen} tokens/s "
              f"(from {figures['rates_from']})")
    return figures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description="Cold vs warm (cached prefix) latency of a local engine.")
    parser.add_argument("--model", help="GGUF file (default: the bundled demo model)")
    parser.add_argument("--provider", choices=["llamacpp", "openai"], default="llamacpp")
    parser.add_argument("--base-url", help="OpenAI-compatible server to use instead of starting llama_cpp.server")
    parser.add_argument("--runs", type=int, default=3, help="cold and warm calls each (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per HTTP call (default 600)")
    args = parser.parse_args(argv)
    if args.model and not Path(args.model).is_file():
        parser.error(f"model file not found: {args.model}")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
