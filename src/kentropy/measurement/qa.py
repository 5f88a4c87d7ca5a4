"""Closed-book QA of every fact of a facts file (kentropy.sources.facts_file) on one checkpoint, any causal LM.

Each question (a fact asked with one template) gets three answers:
- ``correct``: SMI's criterion (yuhui1038/SMI ``analysis/tools/1_merge_outputs.py`` line 14: the object string is
  in the generated text), on a greedy continuation of ``max_new_tokens`` tokens (the released code samples 20
  continuations of 32 tokens at temperature 0.7, ``infer/infer_transformers.py`` lines 36-37; greedy is one
  deterministic answer per question, as the issue asks);
- ``match``: whether the greedy continuation begins with the object's tokens, found in one teacher-forced
  forward pass (every object token is the most likely next token): the criterion of parameter
  specialization (kentropy.measurement.specialization), which masks the model many times over;
- ``logprob``: the object's summed log-probability after the prompt (``n_tokens`` tokens).
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..evaluation.probes import encode_probe, score_targets
from ..sources.corpora import pad_id_of, padded_batches
from ..sources.facts_file import questions

#: Columns of one checkpoint's QA table (a row per question), after its key columns.
QA_COLUMNS = ["fact", "subject", "relation", "object", "templates", "template", "correct", "match", "logprob",
              "n_tokens", "answer"]  # fmt: skip


@torch.no_grad()
def greedy_continuations(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """The greedy continuation of each prompt, ``max_new_tokens`` tokens at most (``generate`` on left-padded
    batches; positions count real tokens only), decoded without special tokens, in the prompts' order.

    Batches hold prompts of similar length (sorted by token count), so little of a batch is padding: every
    generated token costs a forward pass over the batch's width."""
    device = next(model.parameters()).device
    pad = pad_id_of(tokenizer)
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = []
    batches = padded_batches([encoded[i] for i in order], batch_size, pad, padding_side="left")
    for batch in tqdm(batches, total=-(-len(encoded) // batch_size), desc="generate", unit="batch"):
        width = batch["input_ids"].shape[1]
        generated = model.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
        out += tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
    answers = [""] * len(out)
    for i, answer in zip(order, out):
        answers[i] = answer
    return answers


def answer_questions(model, tokenizer, facts: pd.DataFrame, max_new_tokens: int, batch_size: int) -> pd.DataFrame:
    """Every question of ``facts`` (kentropy.sources.facts_file.questions) answered: ``QA_COLUMNS``."""
    asked = questions(facts)
    answers = greedy_continuations(model, tokenizer, list(asked.prompt), max_new_tokens, batch_size)
    encoded = [encode_probe(tokenizer, p, o) for p, o in zip(asked.prompt, asked.object)]
    logprob, match = score_targets(model, encoded, batch_size, pad_id_of(tokenizer))
    return asked.assign(
        correct=[o in a for o, a in zip(asked.object, answers)],
        match=match,
        logprob=logprob,
        n_tokens=[n for _, n in encoded],
        answer=answers,
    )[QA_COLUMNS]


def count_parameters(model) -> int:
    """Parameters of the model (each tensor once: tied embeddings count once), SMI's model size."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
