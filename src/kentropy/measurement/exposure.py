"""When a pretraining trajectory of the generated world trained on each fact: computed from its data order, not
searched for.

The pretraining corpus is packed as ``kentropy.sources.corpora.pack_blocks`` packs it (each document's tokens then EOS,
cut into ``seq_len`` blocks, the partial last block dropped) and step s (1-based) trains the blocks
``kentropy.sources.corpora.batch_indices(s - 1, …)``. A document's statement of a fact counts as trained on at a
step when the block holding the first token of its object (with the space before it) is in that step's
batch: that is where the model is
trained to predict the object (when the document began in the previous block, its subject is not in that
block's context; docs/design.md says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..sources.corpora import batch_indices

#: Columns of a trajectory's exposure table, after its key columns (model, trajectory, step).
EXPOSURE_COLUMNS = ["fact", "subject", "relation", "object", "exposures", "last_exposure", "statements"]
#: ``last_exposure`` is NaN before a fact's first exposure.
EXPOSURE_MISSING = ("last_exposure",)


def statement_positions(texts: list[str], statements: pd.DataFrame, tokenizer) -> np.ndarray:
    """Position, in the packed token stream, of the first token of each statement's object, with the space before
    it (the first target token of ``" " + object``, as kentropy.evaluation.probes encodes a target; ``statements``:
    document, start, as kentropy.sources.world writes them)."""
    encoded = tokenizer(texts, return_offsets_mapping=True)
    doc_start = np.concatenate([[0], np.cumsum([len(ids) + 1 for ids in encoded["input_ids"]])[:-1]])
    positions = np.empty(len(statements), dtype=np.int64)
    for i, (doc, start) in enumerate(zip(statements.document, statements.start)):
        offsets = encoded["offset_mapping"][doc]
        token = next(t for t, (_, end) in enumerate(offsets) if end >= start)  # the token of the space before it
        positions[i] = doc_start[doc] + token
    return positions


def block_steps(n_blocks: int, batch_size: int, seed: int, last_step: int) -> list[list[int]]:
    """For each block, the 1-based training steps up to ``last_step`` whose batch holds it."""
    steps: list[list[int]] = [[] for _ in range(n_blocks)]
    for step in range(last_step):
        for block in batch_indices(step, batch_size, n_blocks, seed):
            steps[block].append(step + 1)
    return steps


def fact_exposure(
    facts: pd.DataFrame,
    statements: pd.DataFrame,
    positions: np.ndarray,
    n_blocks: int,
    seq_len: int,
    batch_size: int,
    seed: int,
    checkpoints: list[int],
) -> pd.DataFrame:
    """Per fact of ``facts`` and checkpoint step: ``exposures`` (statements of it trained on by then, counted
    again at each pass over a block), ``last_exposure`` (the step of the last one; NaN before the first) and
    ``statements`` (documents of the corpus stating it)."""
    per_block = block_steps(n_blocks, batch_size, seed, max(checkpoints))
    fact_of = {key: i for i, key in enumerate(zip(facts.subject, facts.relation))}
    seen: list[list[int]] = [[] for _ in range(len(facts))]
    stated = np.zeros(len(facts), dtype=np.int64)
    for subject, relation, position in zip(statements.subject, statements.relation, positions):
        fact = fact_of[(subject, relation)]
        stated[fact] += 1
        block = position // seq_len
        if block < n_blocks:  # the partial last block is never trained on
            seen[fact] += per_block[block]
    rows = []
    for checkpoint in sorted(checkpoints):
        for fact, steps in enumerate(seen):
            before = [s for s in steps if s <= checkpoint]
            rows.append((checkpoint, fact, len(before), max(before) if before else np.nan, stated[fact]))
    table = pd.DataFrame(rows, columns=["step", "fact", "exposures", "last_exposure", "statements"])
    table = table.merge(facts[["subject", "relation", "object"]], left_on="fact", right_index=True)
    return table[["step", *EXPOSURE_COLUMNS]].reset_index(drop=True)
