"""Entropy corpora: where the documents come from, and how they become padded batches.

A corpus is a Parquet file with either a ``text`` column (tokenised by each model's own tokenizer) or an
``input_ids`` column (already tokenised, e.g. the Dolma first batch, which is OLMo token ids).
Sources: ``generated`` (the tiny world), ``text`` (a local file, one document per line), ``hf`` (any
Hugging Face dataset, streamed) and ``dolma`` (the first batch of OLMo's published data order).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import KentropyError

log = logging.getLogger(__name__)
#: Bytes per token assumed when a text file's lines are judged before tokenising (at DAG build).
BYTES_PER_TOKEN = 4
#: A document "runs far past" max_length when it holds more than this many times its tokens.
FAR_PAST = 4
#: Characters per token well past any tokenizer's average (English BPE: about 4), to cut a document by
#: characters before tokenizing it (``_leading_tokens``).
CHARS_PER_TOKEN = 32
#: Tokens a cut prefix must hold past max_length before its truncation is trusted to be the whole text's.
CUT_MARGIN = 16

DOLMA_FALLBACK = (
    "use a fallback corpus instead, e.g. `entropy: {corpus: {name: c4, source: hf, dataset: allenai/c4, config: en, "
    "split: validation, text_field: text, count: 2048}}` or `{source: text, path: <one document per line>}`"
)


class CorpusError(KentropyError, RuntimeError):
    """A corpus could not be read or fetched; the message names the source and what to do."""


def text_file_corpus(path: str | Path, count: int | None = None) -> pd.DataFrame:
    """One document per non-empty line of a local UTF-8 file."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"entropy corpus file not found: {path}")
    try:
        docs = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as err:
        raise CorpusError(f"entropy corpus file is not UTF-8 text: {path} ({err})") from err
    if not docs:
        raise CorpusError(f"entropy corpus file has no non-empty line: {path}")
    return pd.DataFrame({"text": docs[:count]})


def text_file_warnings(path: str | Path, count: int | None, max_length: int) -> list[str]:
    """What is wrong with a local text corpus before it is read (at DAG build): fewer non-empty lines than
    ``count``, or lines so long that the measurement sees a small part of them. Reads at most ``count`` lines."""
    path = Path(path)
    if not path.is_file():
        return []
    lines, longest = 0, 0
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                lines, longest = lines + 1, max(longest, len(line.strip()))
                if count is not None and lines >= count:
                    break
    out = []
    if count is not None and lines < count:
        out.append(f"entropy.corpus.path: {path} has {lines} non-empty line(s) (documents), fewer than count {count}")
    if longest > FAR_PAST * BYTES_PER_TOKEN * max_length:
        out.append(
            f"entropy.corpus.path: {path} has a line of {longest:,} bytes (about {longest // BYTES_PER_TOKEN:,} "
            f"tokens), far past entropy.max_length {max_length}: only a document's first {max_length} tokens count"
        )
    return out


def stream_hf_texts(name: str, split: str, text_field: str, config: str | None = None) -> Iterator[str]:
    """Documents of a Hugging Face dataset, streamed: only what is consumed is downloaded."""
    import datasets

    for row in datasets.load_dataset(name, config, split=split, streaming=True):
        if text_field not in row:
            raise CorpusError(f"dataset {name!r} has no field {text_field!r} (fields: {sorted(row)})")
        yield row[text_field]


def hf_dataset_corpus(name: str, split: str, text_field: str, count: int, config: str | None = None) -> pd.DataFrame:
    """The first ``count`` documents of a Hugging Face dataset, streamed."""
    return pd.DataFrame({"text": list(islice(stream_hf_texts(name, split, text_field, config), count))})


def _instance_offsets(fs, paths: list[str], seq_len: int, dtype: np.dtype, needed: int) -> list[tuple[str, int]]:
    """(path, number of instances) for the leading files that hold instance indices < ``needed``."""
    counts = []
    total = 0
    for path in paths:
        n = fs.size(path) // (np.dtype(dtype).itemsize * seq_len)
        counts.append((path, n))
        total += n
        if total >= needed:
            break
    return counts


def dolma_first_batch(
    config_url: str, indices_url: str, batch_size: int, seq_len: int, count: int, dtype: str = "uint16"
) -> pd.DataFrame:
    """The first training batch of an OLMo run, in its published order, as token ids (full instances of
    ``seq_len`` tokens, as the run trained on them).

    OLMo concatenates the token files listed in its training config (``data.paths``); each file holds
    ``size // (itemsize * seq_len)`` instances of ``seq_len`` tokens. ``global_indices.npy`` is the
    shuffled instance order, and despite its name not a ``.npy`` file: OLMo writes it with
    ``np.memmap(..., dtype=np.uint32, mode="w+")``, a headerless array of uint32 (``olmo/data/
    iterable_dataset.py``; the released entropy code reads it back the same way). The first batch is its
    first ``batch_size`` entries. Any fsspec URL works (https, s3, file), which is how this is tested offline.
    """
    import fsspec
    import yaml

    try:
        with fsspec.open(config_url, "r") as f:
            paths = yaml.safe_load(f)["data"]["paths"]
        with fsspec.open(indices_url, "rb") as f:  # only the head of the multi-GB index file is read
            head = f.read(batch_size * 4)
        if len(head) < batch_size * 4:
            raise ValueError(f"{indices_url} holds {len(head) // 4} indices, fewer than one batch of {batch_size}")
        first = np.frombuffer(head, dtype=np.uint32)[:count]
        fs, _ = fsspec.core.url_to_fs(paths[0])
        files = _instance_offsets(fs, paths, seq_len, np.dtype(dtype), int(first.max()) + 1)
        starts = np.cumsum([0] + [n for _, n in files])
        itemsize = np.dtype(dtype).itemsize
        rows = []
        for index in first.tolist():
            f = int(np.searchsorted(starts, index, side="right") - 1)
            path, local = files[f][0], index - starts[f]
            raw = fs.cat_file(path, start=local * seq_len * itemsize, end=(local + 1) * seq_len * itemsize)
            rows.append(np.frombuffer(raw, dtype=dtype).astype(np.int64))
    except (OSError, KeyError, ValueError) as err:  # network errors surface as OSError subclasses in fsspec
        raise CorpusError(
            f"Dolma first batch could not be fetched ({config_url}, {indices_url}: {err}); {DOLMA_FALLBACK}"
        ) from err
    return pd.DataFrame({"input_ids": rows})


def build_corpus(spec: dict, generated_path: str | None = None) -> pd.DataFrame:
    """The corpus a config's ``entropy.corpus`` block describes (schema: config/schema.yaml); warns when it
    holds fewer documents than ``count``."""
    corpus = _corpus(spec, generated_path)
    if spec.get("count") and len(corpus) < spec["count"]:
        log.warning(
            "entropy.corpus: the %s source gave %d document(s), fewer than count %d; measuring %d",
            spec["source"], len(corpus), spec["count"], len(corpus),
        )  # fmt: skip
    return corpus


def _corpus(spec: dict, generated_path: str | None) -> pd.DataFrame:
    source = spec["source"]
    if source == "generated":
        return pd.read_parquet(generated_path).head(spec.get("count"))
    if source == "text":
        return text_file_corpus(spec["path"], spec.get("count"))
    if source == "hf":
        return hf_dataset_corpus(spec["dataset"], spec["split"], spec["text_field"], spec["count"], spec.get("config"))
    if source == "dolma":
        return dolma_first_batch(
            spec["config_url"], spec["indices_url"], spec["batch_size"], spec["seq_len"], spec["count"]
        )
    raise CorpusError(f"entropy.corpus.source: unknown source {source!r}")


def token_sequences(corpus: pd.DataFrame, tokenizer, max_length: int) -> list[list[int]]:
    """Token ids per document, truncated to ``max_length``; empty documents are dropped. Warns, with the
    numbers, when documents run far past ``max_length`` (most of their tokens are never measured)."""
    if "input_ids" in corpus:
        seqs = [list(map(int, ids)) for ids in corpus["input_ids"]]
        vocab = len(tokenizer)
        too_big = max((max(s) for s in seqs if s), default=-1)
        if too_big >= vocab:
            raise CorpusError(
                f"corpus token id {too_big} is outside the model's vocabulary ({vocab}); "
                "pre-tokenised corpora must use the model's tokenizer"
            )
        lengths = [len(s) for s in seqs]
        seqs = [s[:max_length] for s in seqs]
    else:
        seqs, lengths = _leading_tokens(list(corpus["text"]), tokenizer, max_length)
    long = [n for n in lengths if n > FAR_PAST * max_length]
    if long:
        kept = sum(min(n, max_length) for n in lengths)
        log.warning(
            "entropy corpus: %d of %d document(s) run far past entropy.max_length %d (the longest: about %d tokens); "
            "%d of about %d tokens (%.1f%%) are measured",
            len(long), len(lengths), max_length, max(long), kept, sum(lengths), 100 * kept / max(1, sum(lengths)),
        )  # fmt: skip
    return [s for s in seqs if s]


def _prefix(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, cut back to its last space in the second half (a word cut in
    two tokenizes differently, and it is the last)."""
    if len(text) <= chars:
        return text
    space = text.rfind(" ", chars // 2, chars)
    return text[: space if space > 0 else chars]


def _leading_tokens(texts: list[str], tokenizer, max_length: int) -> tuple[list[list[int]], list[int]]:
    """(each document's token ids truncated to ``max_length``, its length in tokens: exact up to
    ``CHARS_PER_TOKEN`` x ``FAR_PAST`` x ``max_length`` characters, beyond that estimated from a prefix).
    Tokenizers read a whole text before they truncate, so a document is cut by characters first (at a space):
    a 10 MB line costs what its prefix does. A cut prefix is used only when it holds ``CUT_MARGIN`` tokens more
    than ``max_length`` (its last word lies past the ones kept); otherwise the prefix doubles."""
    budget = CHARS_PER_TOKEN * FAR_PAST * max_length
    heads = [_prefix(t, budget) for t in texts]
    seqs = tokenizer(heads, truncation=True, max_length=max_length)["input_ids"]
    lengths = [len(s) for s in seqs]
    for i, text in enumerate(texts):
        if len(seqs[i]) < max_length and len(heads[i]) == len(text):
            continue  # a whole document shorter than max_length
        chars, head = budget, heads[i]
        full = tokenizer(head, verbose=False)["input_ids"]
        while len(head) < len(text) and len(full) <= max_length + CUT_MARGIN:
            chars *= 2
            head = _prefix(text, chars)
            full = tokenizer(head, verbose=False)["input_ids"]
        if head is not heads[i]:
            seqs[i] = tokenizer(head, truncation=True, max_length=max_length)["input_ids"]
        lengths[i] = len(full) if len(head) == len(text) else round(len(full) * len(text) / len(head))
    return seqs, lengths


def pad_id_of(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's padding token, or its EOS when it has none (OLMo, Pythia)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def longest_first(sequences: list[list[int]]) -> list[list[int]]:
    """The sequences sorted by length, longest first (ties keep corpus order): consecutive batches then hold
    documents of similar length, so a corpus with a wide length spread is not padded to each batch's one long
    document. For any measurement that averages per instance or per token the order is immaterial; the longest
    batch comes first, so a batch size too large for the accelerator fails at once, not at the end."""
    return sorted(sequences, key=len, reverse=True)


def padded_batches(
    sequences: list[list[int]], batch_size: int, pad_id: int, padding_side: str = "right"
) -> Iterator[dict]:
    """Batches of ``input_ids``/``attention_mask`` tensors, padded to the longest sequence of the batch."""
    import torch  # here: the DAG build reads text_file_warnings from this module

    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            span = slice(width - len(seq), width) if padding_side == "left" else slice(0, len(seq))
            ids[row, span] = torch.tensor(seq)
            mask[row, span] = 1
        yield {"input_ids": ids, "attention_mask": mask}


def pack_blocks(
    texts: Iterable[str],
    tokenizer,
    seq_len: int,
    n_blocks: int | None = None,
    chunk: int = 1000,
    key: str = "corpus",
) -> np.ndarray:
    """Concatenate documents (each followed by EOS) and cut the stream into ``seq_len`` blocks.

    Documents are tokenised ``chunk`` at a time and consumption stops once ``n_blocks`` blocks are full,
    so a streamed corpus is read only as far as the run needs. The last partial block is dropped. Too
    few blocks raise CorpusError naming ``key`` (the config key of the corpus).
    """
    texts = iter(texts)
    pieces, n_tokens = [], 0
    while n_blocks is None or n_tokens < n_blocks * seq_len:
        docs = list(islice(texts, chunk))
        if not docs:
            break
        for ids in tokenizer(docs)["input_ids"]:
            pieces.append(np.asarray([*ids, tokenizer.eos_token_id], dtype=np.int64))
            n_tokens += len(ids) + 1
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    have = len(stream) // seq_len
    if have == 0 or (n_blocks is not None and have < n_blocks):
        raise CorpusError(
            f"{key}: the corpus has {len(stream)} tokens: {have} blocks of {seq_len}, "
            f"{n_blocks or 1} needed; use a larger corpus or fewer steps"
        )
    n = have if n_blocks is None else n_blocks
    return stream[: n * seq_len].reshape(n, seq_len)


def batch_indices(step: int, batch_size: int, n_blocks: int, seed: int) -> np.ndarray:
    """Block indices of the batch at global ``step``: epochs of seeded permutations, read in order. The data
    order of pretraining and of continual training's streams, and what the exposures of a fact are counted in."""
    samples = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = samples // n_blocks
    out = np.empty_like(samples)
    for epoch in np.unique(epochs):
        perm = np.random.default_rng([seed, int(epoch)]).permutation(n_blocks)
        sel = epochs == epoch
        out[sel] = perm[samples[sel] % n_blocks]
    return out
