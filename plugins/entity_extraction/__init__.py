"""Entity extraction: the task, its head, sample data, entity metrics and two baselines.

Built on the public plugin API only (``tunehub.plugin``), exactly as a third-party plugin
would be: the hooks below register the task file, the sample data set, the
``token-classification`` head, the entity metrics and the ``gazetteer`` and ``all-o``
baselines.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION
DATA = Path(__file__).parent / "data"
# longest entity (in tokens) the gazetteer looks up: 8 words, or 32 characters of Chinese,
# where every character is a token (MSRA organisation names run past 10)
MAX_GAZETTEER_WORDS = 32


def build_gazetteer(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]):
    """{entity token tuple: its most frequent type} over the training sentences."""
    from .tags import spans

    seen: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for words, sentence_tags in zip(tokens, tags):
        for start, end, kind in spans(sentence_tags):
            if end - start <= MAX_GAZETTEER_WORDS:
                seen[tuple(words[start:end])][kind] += 1
    return {name: counts.most_common(1)[0][0] for name, counts in seen.items()}


def gazetteer_tags(words: Sequence[str], gazetteer: Mapping[tuple[str, ...], str]) -> list[str]:
    """Left to right, the longest run of tokens that is a known entity gets its type."""
    tags, i = ["O"] * len(words), 0
    longest = max(map(len, gazetteer), default=0)
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            kind = gazetteer.get(tuple(words[i:i + size]))
            if kind:
                tags[i:i + size] = [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
                i += size
                break
        else:
            i += 1
    return tags


def gazetteer_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Exact, case-sensitive longest match of the training entities' strings."""
    from .metrics import entity_outputs

    gazetteer = build_gazetteer(data.train.tokens, data.train.tags)
    predicted = [gazetteer_tags(words, gazetteer) for words in data.eval.tokens]
    return entity_outputs(data.info["labels"], data.eval.tags, predicted)


def all_o_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Tags every token O: entity F1 0, and the token accuracy of doing nothing."""
    from .metrics import entity_outputs

    return entity_outputs(data.info["labels"], data.eval.tags,
                          [["O"] * len(tags) for tags in data.eval.tags])


@hookimpl
def register_tasks(register) -> None:
    register(Path(__file__).parent / "entity-extraction.toml")
    register(Path(__file__).parent / "entity-extraction-zh.toml")


@hookimpl
def register_datasets(register) -> None:
    register("entity-extraction-sample", train=DATA / "sample.jsonl",
             description="1,200 sentences written for tunehub (support tickets, financial "
                         "news, product mentions), text + character spans: PER, ORG, LOC, PRODUCT")
    register("entity-extraction-zh-sample", train=DATA / "sample_zh.jsonl",
             description="600 Chinese sentences written for tunehub (support tickets, financial "
                         "news, product mentions), text + character spans: PER, ORG, LOC, PRODUCT")


@hookimpl
def register_heads(register) -> None:
    from .head import TokenClassificationHead

    register(TokenClassificationHead())


@hookimpl
def register_metrics(register) -> None:
    from .metrics import register_all

    register_all(register)


@hookimpl
def register_baselines(register) -> None:
    register("gazetteer", gazetteer_baseline,
             description="longest match of the training entities' strings, most frequent type")
    register("all-o", all_o_baseline, description="tags every token O (outside any entity)")
