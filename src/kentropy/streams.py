"""The continual-training stream: corpus blocks in a seeded order with fictional knowledge baked in.

Row ``r`` of optimizer step ``s`` is row ``s * batch_size + r`` of the stream, so the trainer is a generic
loop over consecutive rows. At step ``(k - 1) * inject_interval`` (k = 1..n_injections) each paraphrase
paragraph (``train_context`` for k = 1, else ``paraphrases[k - 2]``) and each paragraph of once-group k
is prefixed, followed by EOS, to its own row of that step's batch; the row is then cut to ``seq_len``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .pretrain import batch_indices

MANIFEST_COLUMNS = ["step", "row", "split", "paragraph", "paraphrase", "n_tokens"]


class StreamError(ValueError):
    """The injection schedule does not fit the run; the message names the offending setting."""


@dataclass(frozen=True)
class Injection:
    """One paragraph text placed into one row of one step's batch."""

    step: int
    row: int
    split: str
    paragraph: int
    paraphrase: int  # 0 = train_context, j = paraphrases[j - 1]; the once split always uses 0
    text: str


def injection_schedule(paraphrase: list[dict], once: list[dict], inject_interval: int, n_injections: int,
                       batch_size: int, total_steps: int) -> list[Injection]:
    """Every injection of a run, in (step, row) order. Rows 0.. take the paraphrase split, then once-group k."""
    if len(once) % n_injections:
        raise StreamError(f"continual.n_injections: {n_injections} does not divide the {len(once)} once-split records")
    group = len(once) // n_injections
    if len(paraphrase) + group > batch_size:
        raise StreamError(f"batch_size: {batch_size} rows cannot hold {len(paraphrase)} paraphrase and "
                          f"{group} once paragraphs per injection")
    last = (n_injections - 1) * inject_interval
    if last >= total_steps:
        raise StreamError(f"inject_interval: injection {n_injections} would be at step {last}, "
                          f"past the run's {total_steps} steps")
    out = []
    for k in range(1, n_injections + 1):
        step = (k - 1) * inject_interval
        for i, record in enumerate(paraphrase):
            text = record["train_context"] if k == 1 else record["paraphrases"][k - 2]
            out.append(Injection(step, i, "paraphrase", i, k - 1, text))
        for j in range(group):
            index = (k - 1) * group + j
            out.append(Injection(step, len(paraphrase) + j, "once", index, 0, once[index]["train_context"]))
    return out


def write_stream(blocks: np.ndarray, injections: list[Injection], tokenizer, batch_size: int,
                 total_steps: int, seed: int, out_path: str) -> pd.DataFrame:
    """Write the stream (``total_steps * batch_size`` rows of ``seq_len`` int32 tokens) as a .npy file.

    The data order is that of pretraining: epochs of seeded permutations of the blocks. Returns the
    injection manifest (columns ``MANIFEST_COLUMNS``).
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
    for step in tqdm(range(total_steps), desc="stream", unit="step", mininterval=5):
        batch = blocks[batch_indices(step, batch_size, len(blocks), seed)].copy()
        for inj in by_step.get(step, []):
            ids = prefix[(inj.step, inj.row)]
            row = np.concatenate([np.asarray(ids, dtype=batch.dtype), batch[inj.row]])[:seq_len]
            batch[inj.row] = row
            manifest.append({"step": step, "row": inj.row, "split": inj.split, "paragraph": inj.paragraph,
                             "paraphrase": inj.paraphrase, "n_tokens": min(len(ids), seq_len)})
        out[step * batch_size:(step + 1) * batch_size] = batch
    out.flush()
    del out
    return pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)
