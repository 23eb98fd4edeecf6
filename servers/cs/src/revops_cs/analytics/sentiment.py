"""Offline sentiment (VADER) and theme extraction for free-text feedback. No network, no I/O.

Sentiment: VADER's compound score (−1..1) from the lexicon bundled in the `vaderSentiment`
package; labels use VADER's published thresholds: ≥ 0.05 positive, ≤ −0.05 negative, else neutral.

Themes: a transparent keyword method rather than a model, so every theme can be traced back to the
comments that produced it. Comments are lower-cased, split into words (letters, digits, apostrophes),
words of fewer than 3 letters and the stop words below are dropped, and each remaining word and each
adjacent pair of remaining words (bigram) is counted at most once per comment. A theme's weight is the
number of comments that mention it; a bigram is preferred over its own words when it occurs in at
least two comments, so "slow export" is one theme instead of "slow" and "export".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

# English function words plus survey filler ("product", "really") that says nothing about a theme.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each even ever every few for from further get gets getting got had hadn't has
    hasn't have haven't having he her here hers herself him himself his how i i'm i've if in into is
    isn't it it's its itself just let's lot lots me more most much must mustn't my myself no nor not
    now of off on once one only or other ought our ours ourselves out over own please quite rather
    really same she should shouldn't so some still such than that that's the their theirs them
    themselves then there there's these they they're this those through thus to too under until up
    upon us use used using very via was wasn't way we we're we've well were weren't what when where
    which while who whom why will with won't would wouldn't yes yet you you're your yours yourself
    yourselves thing things product team time really would like just also want wish need needs
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_WORD = re.compile(r"[a-z0-9][a-z0-9']*")


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    # Imported here (~10 ms) only when needed; vaderSentiment ships no py.typed marker or stubs.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    """VADER compound score of `text`, −1 (most negative) … 1 (most positive)."""
    return float(_analyzer().polarity_scores(text)["compound"])


def label(score: float) -> str:
    """positive / neutral / negative by VADER's standard ±0.05 thresholds."""
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def terms(text: str) -> set[str]:
    """The distinct theme candidates (content words and adjacent content-word bigrams) of one text."""
    words = [w.strip("'") for w in _WORD.findall(text.lower())]
    kept = [w for w in words if len(w) >= 3 and w not in STOP_WORDS and not w.isdigit()]
    out = set(kept)
    out.update(f"{a} {b}" for a, b in pairwise(kept))
    return out


@dataclass(frozen=True)
class Theme:
    term: str
    mentions: int
    members: tuple[int, ...]  # indexes of the texts that mention the theme


def themes(texts: Sequence[str], *, top: int = 10, min_mentions: int = 2) -> list[Theme]:
    """The `top` most-mentioned themes over `texts` (mentions = number of texts), ties by term."""
    per_text = [terms(t) for t in texts]
    counts: Counter[str] = Counter()
    for found in per_text:
        counts.update(found)
    frequent = {t: c for t, c in counts.items() if c >= min_mentions}
    # A word that appears only inside a frequent bigram adds nothing: drop it in favour of the bigram.
    covered: set[str] = set()
    for term, count in frequent.items():
        if " " in term:
            for word in term.split(" "):
                if frequent.get(word, 0) <= count:
                    covered.add(word)
    ranked = sorted((t for t in frequent if t not in covered), key=lambda t: (-frequent[t], t))[:top]
    return [
        Theme(term, frequent[term], tuple(i for i, found in enumerate(per_text) if term in found))
        for term in ranked
    ]


def distribution(scores: Iterable[float]) -> dict[str, int]:
    """Counts of positive / neutral / negative labels."""
    out = {"positive": 0, "neutral": 0, "negative": 0}
    for s in scores:
        out[label(s)] += 1
    return out
