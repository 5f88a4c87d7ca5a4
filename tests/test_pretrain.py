"""Tiny pretraining: data order, schedule, and segments that reproduce one uninterrupted run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kentropy.pretrain import TinyModelConfig, batch_indices, train_segment, train_tokenizer
from kentropy.schedule import warmup_cosine
from kentropy.world import build_world, pretraining_corpus


def test_batch_indices_cover_each_epoch_once():
    seen = np.concatenate([batch_indices(s, 4, 10, seed=0) for s in range(5)])  # 20 samples = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert np.array_equal(batch_indices(3, 4, 10, 0), batch_indices(3, 4, 10, 0))


def test_warmup_cosine_endpoints():
    """OLMo's CosWithWarmup at 1-based steps: warm-up from 10% of the peak, cosine to alpha_f."""
    assert warmup_cosine(1, 100, 0.1, 0.1) == pytest.approx(0.1 + 0.9 * 1 / 10)
    assert warmup_cosine(9, 100, 0.1, 0.1) == pytest.approx(0.1 + 0.9 * 9 / 10)
    assert warmup_cosine(10, 100, 0.1, 0.1) == 1.0
    assert warmup_cosine(100, 100, 0.1, 0.1) == 0.1
    assert all(warmup_cosine(s, 100, 0.1, 0.1) >= warmup_cosine(s + 1, 100, 0.1, 0.1) for s in range(10, 100))


def test_segments_equal_one_run(tmp_path):
    torch.set_num_threads(1)
    docs = pretraining_corpus(build_world(0, 30, 1), 200, seed=1)
    pd.DataFrame({"text": docs}).to_parquet(tmp_path / "c.parquet")
    train_tokenizer(docs, 300, tmp_path / "tok")
    cfg = TinyModelConfig(
        hidden_size=16,
        intermediate_size=32,
        num_layers=1,
        num_heads=2,
        seq_len=16,
        batch_size=4,
        lr=1e-2,
        weight_decay=0.1,
        warmup_fraction=0.1,
        alpha_f=0.1,
        total_steps=6,
        seed=0,
    )
    args = (cfg, str(tmp_path / "c.parquet"), str(tmp_path / "tok"))
    train_segment(*args, None, 0, 6, tmp_path / "whole")
    train_segment(*args, None, 0, 3, tmp_path / "s3")
    log = train_segment(*args, str(tmp_path / "s3"), 3, 6, tmp_path / "s6")
    assert log.step.tolist() == [4, 5, 6]
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(tmp_path / "whole").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "s6").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
