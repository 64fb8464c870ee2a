"""Answers made up from a request's schema: values, phrases, token log-probabilities."""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

from tests.fake_openai.config import _WORD

# the service's "JSON in the prompt" instruction ends with the schema
_SCHEMA_IN_PROMPT = re.compile(r"must match this JSON Schema:\n(\{.*\})\s*$", re.M)


def _break_a_line(value: Any, schema: dict[str, Any]) -> bool:
    """Put a line break into the first free-text string of ``value`` (seen from llama.cpp:
    its JSON grammar lets a raw newline into a string)."""
    if not isinstance(value, dict):
        return False
    for name, prop in (schema.get("properties") or {}).items():
        free = prop.get("type") == "string" and not {"enum", "const", "pattern"} & set(prop)
        if free and isinstance(value.get(name), str):
            value[name] += "\nand a second line"
            return True
    return False


# ---- schema-driven value generation ------------------------------------------------
class Generator:
    def __init__(
        self, seed: str, source_text: str, reasoning_words: tuple[int, int] = (3, 8)
    ) -> None:
        self.rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
        self.reasoning_words = reasoning_words
        self.words = _WORD.findall(source_text)[-400:] or [
            "lorem",
            "ipsum",
            "dolor",
            "amet",
        ]
        self.source = source_text

    def phrase(self, lo: int = 3, hi: int = 8) -> str:
        k = self.rng.randint(lo, hi)
        if k > len(self.words):  # a long text from a short source: words drawn again
            return " ".join(self.rng.choice(self.words) for _ in range(k))
        start = self.rng.randrange(max(1, len(self.words) - k))
        return " ".join(self.words[start : start + k])

    def value(self, schema: dict[str, Any], root: dict[str, Any], name: str = "") -> Any:
        if "$ref" in schema:
            ref = schema["$ref"].split("/")[-1]
            return self.value(root.get("$defs", root.get("definitions", {}))[ref], root, name)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
                return self.value(self.rng.choice(options), root, name)
        kind = schema.get("type", "object")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = non_null[0] if non_null else "null"
        if kind == "object":
            props = schema.get("properties", {})
            return {k: self.value(v, root, k) for k, v in props.items()}
        if kind == "array":
            lo = int(schema.get("minItems", 1))
            hi = int(schema.get("maxItems", max(lo, 3)))
            return [
                self.value(schema.get("items", {}), root, name)
                for _ in range(self.rng.randint(lo, hi))
            ]
        if kind == "integer":
            lo = int(schema.get("minimum", 1))
            hi = int(schema.get("maximum", max(lo, 5)))
            return self.rng.randint(lo, hi)
        if kind == "number":
            lo = float(schema.get("minimum", 0.0))
            hi = float(schema.get("maximum", 1.0))
            return round(self.rng.uniform(lo, hi), 3)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        if name == "reasoning":
            return self.phrase(*self.reasoning_words)
        return self.phrase()


# ---- the app -----------------------------------------------------------------------
_PIECE = re.compile(r"\d|[A-Za-z_]+|\s+|[^\w\s]+")


_SCORE_BEFORE = re.compile(r'"score"\s*:\s*$')


def _logprobs(content: str, top: int, gen: Generator, raw: bool = False) -> dict[str, Any]:
    """Chat-completions ``logprobs`` for an answer: word-ish tokens, certain except a
    ``"score": N`` digit, where the model's alternatives fall off around the score it wrote
    (a sampled sharpness, so some papers are confident and some are not)."""
    tokens: list[dict[str, Any]] = []
    text = ""
    for piece in _PIECE.findall(content):
        alts = [(piece, 0.0)]
        if piece in "12345" and _SCORE_BEFORE.search(text):
            sharpness = gen.rng.uniform(0.8, 3.0)
            weights = {str(s): math.exp(-sharpness * abs(s - int(piece))) for s in range(1, 6)}
            if raw:  # unconstrained: most of the mass on tokens the grammar forbids here
                weights.update({"0": 1.5, "\n": 1.0, " N": 0.8})
            total = sum(weights.values())
            alts = sorted(
                ((t, math.log(w / total)) for t, w in weights.items()), key=lambda a: -a[1]
            )
        tokens.append(
            {
                "token": piece,
                "logprob": dict(alts)[piece],
                "bytes": list(piece.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alts[:top]
                ],
            }
        )
        text += piece
    return {"content": tokens, "refusal": None}


def _text_of(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts.extend(p.get("text", "") for p in c if isinstance(p, dict))
    return "\n".join(parts)
