"""Decoder LLMs that write answers, for heads that generate text: fine-tune on (prompt,
response) pairs (LoRA by default), load, generate and stream, grounded prompts that cite
their entries, and token-F1 / ROUGE-L of generated text.

    from tunehub.plugin import generation

    generator, result, how = generation.train(base, name, prompts, responses, settings,
                                              run.model_dir, run.work_dir)
    texts = generator.generate(prompts)

See docs/heads.md (reference: tunehub.plugin.generation).
"""
from __future__ import annotations

from ..core.models.generation import (
    GENERATION_DEFAULTS,
    GROUNDING,
    META,
    PLAIN,
    Generator,
    cite,
    cited,
    exact_match,
    grounded_prompt,
    is_generator,
    load,
    load_base,
    load_tokenizer,
    prompt_ids,
    rouge_l,
    sft_rows,
    stream_cited,
    token_f1,
    train,
    words,
)

__all__ = ["GENERATION_DEFAULTS", "GROUNDING", "META", "PLAIN", "Generator", "train", "load",
           "load_base", "is_generator", "load_tokenizer", "prompt_ids", "sft_rows",
           "grounded_prompt", "cite", "cited", "stream_cited", "words", "token_f1", "rouge_l",
           "exact_match"]
