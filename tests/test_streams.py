"""The injection schedule and the stream it is baked into, without training."""

import numpy as np
import pytest

from kentropy.sources.corpora import batch_indices
from kentropy.sources.fictional_knowledge import load_records
from kentropy.training.streams import StreamError, injection_schedule, write_stream

from .test_knowledge import REAL, needs_shared, record


class CharTokenizer:
    """Token id = byte + 2; id 1 is EOS. Enough to check where injected text lands."""

    eos_token_id = 1

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": [[b + 2 for b in t.encode()] for t in texts]}


@needs_shared
def test_paper_schedule_on_the_published_files():
    """Injection k of a 1,600-step run is in training step 160 k (from 1): the last in the final step."""
    paraphrase = load_records(REAL["paraphrase"][0], n_paraphrases=9)
    once = load_records(REAL["once"][0])
    schedule = injection_schedule(
        paraphrase, once, inject_interval=160, n_injections=10, batch_size=128, total_steps=1600
    )
    assert sorted({i.step for i in schedule}) == [160, 320, 480, 640, 800, 960, 1120, 1280, 1440, 1600]
    for k in range(1, 11):
        at = [i for i in schedule if i.step == k * 160]
        assert len({i.row for i in at}) == len(at) == 70 + 6  # distinct rows
        para = [i for i in at if i.split == "paraphrase"]
        assert [i.paragraph for i in para] == list(range(70))
        expected = [r["train_context"] if k == 1 else r["paraphrases"][k - 2] for r in paraphrase]
        assert [i.text for i in para] == expected
        assert [i.paraphrase for i in para] == [k - 1] * 70
        group = [i for i in at if i.split == "once"]
        assert [i.paragraph for i in group] == list(range((k - 1) * 6, k * 6))
        assert [i.text for i in group] == [once[j]["train_context"] for j in range((k - 1) * 6, k * 6)]
    # Every once paragraph is injected exactly once; every paraphrase paragraph ten times.
    assert sorted(i.paragraph for i in schedule if i.split == "once") == list(range(60))


@needs_shared
def test_three_epochs_cycle_through_the_versions_thirty_times():
    paraphrase = load_records(REAL["paraphrase"][0], n_paraphrases=9)
    once = load_records(REAL["once"][0])
    schedule = injection_schedule(
        paraphrase, once, inject_interval=160, n_injections=10, batch_size=128, total_steps=4800
    )
    steps = sorted({i.step for i in schedule})
    assert steps == list(range(160, 4801, 160)) and len(steps) == 30
    para = [i for i in schedule if i.split == "paraphrase" and i.paragraph == 0]
    assert [i.paraphrase for i in para] == list(range(10)) * 3  # each version three times
    assert sorted(i.paragraph for i in schedule if i.split == "once") == sorted(list(range(60)) * 3)


def test_schedule_errors_name_the_setting():
    para, once = [record()] * 3, [record()] * 4
    with pytest.raises(StreamError, match="n_injections: 3 does not divide the 4"):
        injection_schedule(para, once, 2, 3, 8, 10)
    with pytest.raises(StreamError, match="batch_size: 4 rows cannot hold 3 paraphrase and 2 once"):
        injection_schedule(para, once, 2, 2, 4, 10)
    with pytest.raises(
        StreamError, match="inject_interval: 2 injections every 3 steps do not fit in the run's 5 steps"
    ):
        injection_schedule(para, once, 3, 2, 8, 5)


def test_stream_rows_carry_the_injection_then_the_block(tmp_path):
    rng = np.random.default_rng(0)
    blocks = rng.integers(300, 400, size=(10, 24))
    para = [record(train_context="AB", paraphrases=["CDEF"] + ["x"] * 8), record(train_context="G" * 40)]
    once = [record(train_context="once0"), record(train_context="once1")]
    schedule = injection_schedule(para, once, inject_interval=2, n_injections=2, batch_size=4, total_steps=5)
    manifest = write_stream(
        blocks, schedule, CharTokenizer(), batch_size=4, total_steps=5, seed=7, out_path=tmp_path / "s.npy"
    )
    stream = np.load(tmp_path / "s.npy")
    assert stream.shape == (20, 24) and stream.dtype == np.int32
    injected = {(s, r) for s, r in zip(manifest.step, manifest.row)}
    for step in range(1, 6):  # training steps count from 1; step s is rows (s - 1) * 4 ..
        base = blocks[batch_indices(step - 1, 4, len(blocks), 7)]
        for row in range(4):
            got = stream[(step - 1) * 4 + row]
            if (step, row) not in injected:
                np.testing.assert_array_equal(got, base[row])

    def enc(t):
        return [b + 2 for b in t.encode()] + [1]

    b2 = blocks[batch_indices(1, 4, len(blocks), 7)]
    np.testing.assert_array_equal(stream[4], np.r_[enc("AB"), b2[0]][:24])
    np.testing.assert_array_equal(stream[5], np.r_[enc("G" * 40)][:24])  # cut to seq_len
    np.testing.assert_array_equal(stream[6], np.r_[enc("once0"), b2[2]][:24])
    b4 = blocks[batch_indices(3, 4, len(blocks), 7)]
    np.testing.assert_array_equal(stream[12], np.r_[enc("CDEF"), b4[0]][:24])
    np.testing.assert_array_equal(stream[14], np.r_[enc("once1"), b4[2]][:24])
    assert manifest.to_dict("records")[:3] == [
        {"step": 2, "row": 0, "split": "paraphrase", "paragraph": 0, "paraphrase": 0, "n_tokens": 3},
        {"step": 2, "row": 1, "split": "paraphrase", "paragraph": 1, "paraphrase": 0, "n_tokens": 24},
        {"step": 2, "row": 2, "split": "once", "paragraph": 0, "paraphrase": 0, "n_tokens": 6},
    ]
    assert list(manifest.step) == [2, 2, 2, 4, 4, 4] and list(manifest.paraphrase[3:]) == [1, 1, 0]
