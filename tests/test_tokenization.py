"""The token ids the paper's pipeline gives, with the tokenizer OLMo-1B was trained with (offline).

The released code wraps this tokenizer file in OLMo's ``Tokenizer`` (eos 50279, pad 1 in the released
training config) and encodes probes and injected paragraphs with ``add_special_tokens=False``; injected
paragraphs end with EOS (``paraphrase70-once60split.pkl``). Ours must give exactly those ids: no BOS or EOS
where the released code adds none.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kentropy.evaluation.probes import encode_probe, encode_probe_released
from kentropy.sources.corpora import pack_blocks, token_sequences
from kentropy.sources.fictional_knowledge import load_records, probe_table
from kentropy.training.streams import injection_schedule, write_stream

from .test_knowledge import REAL, needs_shared

FILE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "tokenizers"
    / "allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
)
pytestmark = [
    needs_shared,
    pytest.mark.skipif(not FILE.is_file(), reason="../shared/data/tokenizers is not beside the repo"),
]
EOS, PAD = 50279, 1  # the released training config: eos_token_id 50279, pad_token_id 1


@pytest.fixture(scope="module")
def tokenizers():
    """(ours: the HF fast tokenizer over the file with OLMo's ids; raw: the `tokenizers` object the released
    code wraps)."""
    import tokenizers as tk
    import transformers as tf

    raw = tk.Tokenizer.from_file(str(FILE))
    ours = tf.PreTrainedTokenizerFast(
        tokenizer_file=str(FILE), eos_token=raw.id_to_token(EOS), pad_token=raw.id_to_token(PAD)
    )
    assert (ours.eos_token_id, ours.pad_token_id, ours.bos_token_id) == (EOS, PAD, None)
    return ours, raw


@pytest.fixture(scope="module")
def records():
    return {split: load_records(REAL[split][0]) for split in ("paraphrase", "once")}


def test_probes_get_the_released_ids(tokenizers, records):
    ours, raw = tokenizers
    probes = probe_table(records)
    for text, target in zip(probes.input, probes.target):
        ids, n = encode_probe_released(ours, text, target)
        assert ids == raw.encode(f"{text} {target}", add_special_tokens=False).ids
        assert ids[: len(ids) - n] == raw.encode(text, add_special_tokens=False).ids
        ids, n = encode_probe(ours, text, target)  # per_token: input and " target" apart, nothing added
        assert ids == raw.encode(text.rstrip()).ids + raw.encode(" " + target.strip()).ids


def test_injected_paragraphs_are_their_ids_then_eos(tokenizers, records, tmp_path):
    ours, raw = tokenizers
    schedule = injection_schedule(
        records["paraphrase"], records["once"], inject_interval=2, n_injections=10, batch_size=80, total_steps=20
    )
    blocks = np.random.default_rng(0).integers(2, 50000, size=(200, 1024))
    write_stream(blocks, schedule, ours, batch_size=80, total_steps=20, seed=0, out_path=tmp_path / "s.npy")
    stream = np.load(tmp_path / "s.npy")
    for inj in schedule:
        want = raw.encode(inj.text, add_special_tokens=False).ids + [EOS]
        row = stream[(inj.step - 1) * 80 + inj.row]
        assert row[: len(want)].tolist() == want[:1024], (inj.step, inj.row)


def test_corpora_get_no_special_tokens(tokenizers, records):
    ours, raw = tokenizers
    docs = [r["train_context"] for r in records["once"][:20]]
    assert token_sequences(pd.DataFrame({"text": docs}), ours, 2048) == [raw.encode(d).ids for d in docs]
    blocks = pack_blocks(docs, ours, 64)
    stream = [t for d in docs for t in raw.encode(d).ids + [EOS]]
    assert blocks.reshape(-1).tolist() == stream[: blocks.size]


class Recording:
    """A tokenizer that records the longest text it was given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.longest = tokenizer, 0

    def __call__(self, texts, **kwargs):
        self.longest = max([self.longest, *map(len, [texts] if isinstance(texts, str) else texts)])
        return self.tokenizer(texts, **kwargs)


@pytest.mark.parametrize("max_length", [32, 2048])
def test_a_giant_document_is_cut_by_characters_before_it_is_tokenized_and_gives_the_same_ids(
    tokenizers, records, max_length, caplog
):
    ours, raw = tokenizers
    paragraph = " ".join(r["train_context"] for r in records["once"])
    giant = (paragraph + " ") * (2_000_000 // len(paragraph))  # about 2 MB on one line
    docs = ["a short one.", giant, paragraph]
    recording = Recording(ours)
    with caplog.at_level("WARNING"):
        seqs = token_sequences(pd.DataFrame({"text": docs}), recording, max_length)
    assert seqs == [raw.encode(d).ids[:max_length] for d in docs]
    assert recording.longest <= 32 * 4 * max_length < len(giant)
    whole = len(raw.encode(giant).ids)
    longest = int(caplog.text.split("the longest: about ")[1].split(" tokens")[0])
    assert abs(longest - whole) < 0.1 * whole  # estimated from the prefix
