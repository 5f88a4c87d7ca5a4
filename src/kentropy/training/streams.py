"""The continual-training stream: corpus blocks in a seeded order with fictional knowledge baked in.

Row ``r`` of training step ``s`` (counted from 1, as the trainer's logs and OLMo count) is row
``(s - 1) * batch_size + r`` of the stream, so the trainer is a generic loop over consecutive rows.
Injection k = 1, 2, ... happens in step ``k * inject_interval`` for as long as the run lasts, as in the
released trainer (kaistAI/Knowledge-Entropy ``olmo/train.py``, ``fit``): none in the first step, the last
of an epoch in its final step, and past the first epoch the versions cycle. Injection k uses version
``v = (k - 1) mod n_injections``: each paraphrase-split paragraph (``train_context`` for v = 0, else
``paraphrases[v - 1]``) and each paragraph of once-group v, followed by EOS, are prefixed to their own
rows of that step's batch (paraphrase split first, then the once group); each row is then cut to
``seq_len``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core.errors import KentropyError
from ..core.plan import injection_steps
from ..sources.corpora import batch_indices

MANIFEST_COLUMNS = ["step", "row", "split", "paragraph", "paraphrase", "n_tokens"]


class StreamError(KentropyError, ValueError):
    """The injection schedule does not fit the run; the message names the offending setting."""


@dataclass(frozen=True)
class Injection:
    """One paragraph text placed into one row of one step's batch."""

    step: int  # training step, counted from 1
    row: int
    split: str
    paragraph: int
    paraphrase: int  # 0 = train_context, j = paraphrases[j - 1]; the once split always uses 0
    text: str


def injection_schedule(
    paraphrase: list[dict], once: list[dict], inject_interval: int, n_injections: int, batch_size: int, total_steps: int
) -> list[Injection]:
    """Every injection of a run, in (step, row) order. Rows 0.. take the paraphrase split, then the once group."""
    if len(once) % n_injections:
        raise StreamError(f"continual.n_injections: {n_injections} does not divide the {len(once)} once-split records")
    group = len(once) // n_injections
    if len(paraphrase) + group > batch_size:
        raise StreamError(
            f"batch_size: {batch_size} rows cannot hold {len(paraphrase)} paraphrase and "
            f"{group} once paragraphs per injection"
        )
    steps = injection_steps(inject_interval, total_steps)
    if len(steps) < n_injections:
        raise StreamError(
            f"inject_interval: {n_injections} injections every {inject_interval} steps do not fit "
            f"in the run's {total_steps} steps"
        )
    out = []
    for k, step in enumerate(steps, start=1):
        version = (k - 1) % n_injections
        for i, record in enumerate(paraphrase):
            text = record["train_context"] if version == 0 else record["paraphrases"][version - 1]
            out.append(Injection(step, i, "paraphrase", i, version, text))
        for j in range(group):
            index = version * group + j
            out.append(Injection(step, len(paraphrase) + j, "once", index, 0, once[index]["train_context"]))
    return out


def write_stream(
    blocks: np.ndarray,
    injections: list[Injection],
    tokenizer,
    batch_size: int,
    total_steps: int,
    seed: int,
    out_path: str,
) -> pd.DataFrame:
    """Write the stream (``total_steps * batch_size`` rows of ``seq_len`` int32 tokens) as a .npy file.

    The data order is that of pretraining: epochs of seeded permutations of the blocks. Returns the
    injection manifest (columns ``MANIFEST_COLUMNS``; ``step`` counted from 1, as the trainer logs it).
    """
    seq_len = blocks.shape[1]
    if blocks.max() > np.iinfo(np.int32).max:
        raise StreamError("token ids exceed int32")
    by_step: dict[int, list[Injection]] = {}
    for inj in injections:
        by_step.setdefault(inj.step, []).append(inj)
    encoded = tokenizer([inj.text for inj in injections], add_special_tokens=False)["input_ids"]
    prefix = {(inj.step, inj.row): [*ids, tokenizer.eos_token_id] for inj, ids in zip(injections, encoded)}
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.int32, shape=(total_steps * batch_size, seq_len))
    manifest = []
    for index in tqdm(range(total_steps), desc="stream", unit="step", mininterval=5):
        step = index + 1
        batch = blocks[batch_indices(index, batch_size, len(blocks), seed)].copy()
        for inj in by_step.get(step, []):
            ids = prefix[(inj.step, inj.row)]
            row = np.concatenate([np.asarray(ids, dtype=batch.dtype), batch[inj.row]])[:seq_len]
            batch[inj.row] = row
            manifest.append(
                {
                    "step": step,
                    "row": inj.row,
                    "split": inj.split,
                    "paragraph": inj.paragraph,
                    "paraphrase": inj.paraphrase,
                    "n_tokens": min(len(ids), seq_len),
                }
            )
        out[index * batch_size : step * batch_size] = batch
    out.flush()
    del out
    return pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)
