"""Entropy corpus sources and batching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from kentropy.sources.corpora import CorpusError, build_corpus, dolma_first_batch, padded_batches, text_file_corpus


def test_text_file_one_document_per_line(tmp_path):
    f = tmp_path / "docs.txt"
    f.write_text("first doc\n\n  second doc  \nthird\n")
    assert text_file_corpus(f).text.tolist() == ["first doc", "second doc", "third"]
    assert text_file_corpus(f, count=2).text.tolist() == ["first doc", "second doc"]
    with pytest.raises(CorpusError, match="not found: .*missing.txt"):
        text_file_corpus(tmp_path / "missing.txt")


def test_dolma_first_batch_follows_global_indices(tmp_path):
    """Two token files of 3 and 4 instances; the first batch is read through the published order."""
    seq_len, tokens = 4, []
    paths = []
    for f, n in enumerate([3, 4]):
        arr = np.arange(n * seq_len, dtype=np.uint16) + 1000 * f
        path = tmp_path / f"part-{f}.npy"
        arr.tofile(path)  # OLMo token files are raw uint16 arrays
        paths.append(path.as_uri())
        tokens.append(arr.reshape(n, seq_len))
    instances = np.concatenate(tokens)
    config = tmp_path / "OLMo.yaml"
    config.write_text(yaml.safe_dump({"data": {"paths": paths}}))
    order = np.array([5, 0, 3, 6, 1, 2, 4], dtype=np.uint32)
    # As OLMo writes it (olmo/data/iterable_dataset.py): a raw uint32 memmap, no .npy header.
    mm = np.memmap(tmp_path / "global_indices.npy", dtype=np.uint32, mode="w+", shape=(len(order),))
    mm[:] = order
    mm.flush()
    del mm
    assert (tmp_path / "global_indices.npy").stat().st_size == 4 * len(order)
    batch = dolma_first_batch(
        config.as_uri(), (tmp_path / "global_indices.npy").as_uri(), batch_size=3, seq_len=seq_len, count=3
    )
    expected = instances[order[:3]].astype(np.int64)
    assert np.array_equal(np.stack(batch.input_ids), expected)


def test_dolma_unreachable_names_the_fallback(tmp_path):
    with pytest.raises(CorpusError, match="could not be fetched.*fallback corpus instead"):
        dolma_first_batch((tmp_path / "nope.yaml").as_uri(), (tmp_path / "nope.npy").as_uri(), 2, 4, 2)


def test_generated_source_reads_world_file(tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"]}).to_parquet(tmp_path / "e.parquet")
    assert len(build_corpus({"name": "g", "source": "generated", "count": 2}, str(tmp_path / "e.parquet"))) == 2


def test_padded_batches_masks_and_sides():
    seqs = [[5, 6, 7], [8]]
    right = next(padded_batches(seqs, 2, pad_id=0))
    left = next(padded_batches(seqs, 2, pad_id=0, padding_side="left"))
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_hf_dataset_is_streamed_and_packed_only_as_far_as_needed(tmp_path):
    from itertools import count

    from kentropy.sources.corpora import pack_blocks, stream_hf_texts

    data = tmp_path / "pubmed-like"
    data.mkdir()
    pd.DataFrame({"text": [f"abstract {i} " + "word " * 20 for i in range(5000)], "pmid": range(5000)}).to_parquet(
        data / "train-00000-of-00001.parquet"
    )
    consumed = count()

    def counted():
        for text in stream_hf_texts(str(data), "train", "text"):
            next(consumed)
            yield text

    class WordTokenizer:
        eos_token_id = 0

        def __call__(self, texts):
            return {"input_ids": [[1 + len(w) for w in t.split()] for t in texts]}

    blocks = pack_blocks(counted(), WordTokenizer(), seq_len=16, n_blocks=100, chunk=50)
    assert blocks.shape == (100, 16)
    assert next(consumed) <= 150  # 100 blocks need ~70 documents: streaming stopped after the next chunk
    with pytest.raises(CorpusError, match=r"has no field 'body' \(fields: \['pmid', 'text'\]\)"):
        next(stream_hf_texts(str(data), "train", "body"))
    with pytest.raises(
        CorpusError, match="^continual.corpora.c4: the corpus has 80 tokens: 5 blocks of 16, 1000 needed"
    ):
        pack_blocks(iter(["a b c"] * 20), WordTokenizer(), seq_len=16, n_blocks=1000, key="continual.corpora.c4")
