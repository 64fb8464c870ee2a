"""A faithful fake OpenAI-compatible server for tests and benchmarks (real HTTP, 127.0.0.1).

Serves chat completions (JSON-schema output valid against the requested schema, tool calls
from the tool's parameter schema, ``n`` choices, refusals, ``finish_reason: length``), the
Responses API, embeddings, files and vector stores, with OpenAI's error bodies and
``x-request-id`` / ``x-ratelimit-*`` headers. Knobs: latency, RPM/TPM limits (429 +
retry-after), injected 500/503/timeouts, accepted keys (401), context limit (400
``context_length_exceeded``). ``GET /_fake/stats`` reports calls, tokens, peak concurrency.

Modules: config (knobs, scripts, dialects), limits (rate limits, shared state), generate
(answers from schemas), app (chat, Responses, embeddings), storage (files, batches, vector
stores), server (the fake on a port).

Run alone:  python -m tests.fake_openai --port 8099 [--latency 1.0] [--rpm 3000]
"""

from tests.fake_openai.config import DIALECTS, FakeConfig, Script
from tests.fake_openai.server import FakeOpenAIServer, free_port

__all__ = ["DIALECTS", "FakeConfig", "FakeOpenAIServer", "Script", "free_port"]
