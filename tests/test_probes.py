"""Probe scores, both definitions, against brute-force references (float64, every probe checked).

``per_token`` is checked against one unpadded forward per probe. ``released`` is checked against a
re-enactment of the released evaluator: torch's own ``DistributedSampler`` deals each split-and-kind's
probes to the ranks, batches of 16 are right-padded with no attention mask, and the per-token loss is
averaged over every position of the padded batch, as ``eval_batch`` does.
"""

from pathlib import Path

import pandas as pd
import pytest
import torch

from kentropy.core.plan import ReleasedEvaluator
from kentropy.evaluation.probes import encode_probe, encode_probe_released, released_divisors, score_probes
from kentropy.sources.fictional_knowledge import load_records, probe_table
from kentropy.sources.world import fictional_record

from .conftest import tiny_olmo
from .test_knowledge import REAL, needs_shared

#: The released runs' batching (the schema's ``probe.released`` defaults).
RELEASED = ReleasedEvaluator(batch_size=16, world_size=4)

TOKENIZER = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "tokenizers"
    / "allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
)


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory):
    world, tokenizer, model = tiny_olmo(tmp_path_factory.mktemp("probes"), n_fictional=4, noise=0.05)
    model = model.to(torch.float64)
    records = [fictional_record(p, world.country_of[p.city], i) for i, p in enumerate(world.fictional)]
    probes = probe_table({"paraphrase": records[:2], "once": records[2:]})
    return model, tokenizer, probes


def reference_score(model, ids: list[int], n_target: int) -> float:
    """One unpadded forward; log p(token_i | tokens_<i) summed one target token at a time."""
    logits = model(input_ids=torch.tensor([ids])).logits[0].to(torch.float64)
    total = 0.0
    for pos in range(len(ids) - n_target, len(ids)):
        total += torch.log_softmax(logits[pos - 1], dim=-1)[ids[pos]].item()
    return total / n_target


@torch.no_grad()
def reference_released(
    model, tokenizer, probes: pd.DataFrame, batch_size: int, world_size: int, pad_id: int
) -> list[float]:
    """The released evaluator re-enacted: per (split, kind), the sampler's slots, padded batches, the mean
    of the per-position loss over the padded length; a probe's value is that of its own (first) slot."""
    from torch.utils.data import DistributedSampler

    out = {}
    for _, group in probes.groupby(["split", "kind"], sort=False):
        items = [encode_probe_released(tokenizer, i, t) for i, t in zip(group.input, group.target)]
        for rank in range(world_size):
            slots = list(DistributedSampler(items, num_replicas=world_size, rank=rank, shuffle=False, drop_last=False))
            for b in range(0, len(slots), batch_size):
                batch = slots[b : b + batch_size]
                width = max(len(items[i][0]) for i in batch)
                ids = torch.full((len(batch), width), pad_id)
                labels = torch.full((len(batch), width), -100)
                for row, i in enumerate(batch):
                    seq, n = items[i]
                    ids[row, : len(seq)] = torch.tensor(seq)
                    labels[row, len(seq) - n : len(seq)] = torch.tensor(seq[len(seq) - n :])
                # The evaluator's per-position loss: cross-entropy where a label is set, 0 where it is
                # ignored; the output layer runs on the labelled positions only (50k-token float64 logits
                # at every padded position would be most of this test's time, to add zeros).
                hidden = model.base_model(input_ids=ids).last_hidden_state[:, :-1]
                target = labels[:, 1:]
                scored = target != -100
                loss = torch.zeros(target.shape, dtype=torch.float64)
                loss[scored] = torch.nn.functional.cross_entropy(
                    model.lm_head(hidden[scored]).to(torch.float64), target[scored], reduction="none"
                )
                per_probe = loss.mean(dim=-1)
                for row, i in enumerate(batch):
                    out.setdefault(group.index[i], -per_probe[row].item())  # the first slot is the probe's own
    return [out[i] for i in probes.index]


def test_target_tokens_are_those_of_the_spaced_target(model_and_tokenizer):
    _, tokenizer, _ = model_and_tokenizer
    ids, n = encode_probe(tokenizer, "Ana Kolo was born in ", "Rimasa ")
    assert ids[-n:] == tokenizer(" Rimasa", add_special_tokens=False)["input_ids"]
    assert ids[:-n] == tokenizer("Ana Kolo was born in")["input_ids"]


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_scores_match_the_brute_force_reference(model_and_tokenizer, batch_size):
    model, tokenizer, probes = model_and_tokenizer
    released = ReleasedEvaluator(batch_size=3, world_size=2)
    got = score_probes(model, tokenizer, probes, batch_size=batch_size, max_length=None, released=released)
    with torch.no_grad():
        want = [reference_score(model, *encode_probe(tokenizer, i, t)) for i, t in zip(probes.input, probes.target)]
    assert len(got) == len(probes) == 60
    assert len({len(encode_probe(tokenizer, i, t)[0]) for i, t in zip(probes.input, probes.target)}) > 1  # padding used
    torch.testing.assert_close(
        torch.tensor(got.per_token.to_numpy()), torch.tensor(want, dtype=torch.float64), rtol=1e-10, atol=1e-10
    )
    want = reference_released(model, tokenizer, probes, 3, 2, tokenizer.pad_token_id or 0)
    torch.testing.assert_close(
        torch.tensor(got.released.to_numpy()), torch.tensor(want, dtype=torch.float64), rtol=1e-10, atol=1e-10
    )


def test_released_divisors_follow_the_sampler():
    # 5 probes, 2 ranks, batches of 2: slots [0 1 2 3 4 0]; rank 0 gets 0 2 | 4, rank 1 gets 1 3 | 0.
    lengths = [10, 3, 7, 4, 2]
    assert list(released_divisors(lengths, ReleasedEvaluator(batch_size=2, world_size=2))) == [9, 3, 9, 3, 1]
    # The repeated slot of probe 0 widens rank 1's last batch, which holds nothing else.
    assert list(released_divisors([1, 1, 1], ReleasedEvaluator(batch_size=1, world_size=2))) == [0, 0, 0]


def test_truncation_keeps_the_target(model_and_tokenizer):
    model, tokenizer, probes = model_and_tokenizer
    one = probes.iloc[:1]
    ids, n = encode_probe(tokenizer, one.input.iloc[0], one.target.iloc[0])
    got = score_probes(model, tokenizer, one, batch_size=1, max_length=n + 2, released=RELEASED)
    with torch.no_grad():
        want = reference_score(model, ids[-(n + 2) :], n)
    assert got.per_token.iloc[0] == pytest.approx(want, rel=1e-10)


@needs_shared
@pytest.mark.skipif(not TOKENIZER.is_file(), reason="../shared/data/tokenizers is not beside the repo")
def test_both_scores_on_the_published_probes_with_the_olmo_tokenizer():
    """The published files, tokenised with the tokenizer OLMo-1B was trained with, on a tiny model with
    OLMo's vocabulary: every probe of both splits, both definitions, the released 16 x 4 batching."""
    import transformers as tf

    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_file=str(TOKENIZER), eos_token="<|endoftext|>", pad_token="<|padding|>"
    )
    probes = probe_table({split: load_records(REAL[split][0]) for split in ("paraphrase", "once")})
    assert len(probes) == (70 + 60) * 15
    # The released evaluator's tokenisation: no special tokens, the target is what follows the input's tokens.
    ids, n = encode_probe_released(tokenizer, probes.input.iloc[0], probes.target.iloc[0])
    assert ids == tokenizer(f"{probes.input.iloc[0]} {probes.target.iloc[0]}", add_special_tokens=False)["input_ids"]
    assert ids[:-n] == tokenizer(probes.input.iloc[0], add_special_tokens=False)["input_ids"]
    assert tokenizer.bos_token_id is None or ids[0] != tokenizer.bos_token_id
    torch.manual_seed(0)
    config = tf.OlmoConfig(
        vocab_size=50304,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=256,
        pad_token_id=1,
        eos_token_id=50279,
        bos_token_id=None,
    )
    model = tf.OlmoForCausalLM(config).to(torch.float64).eval()
    got = score_probes(
        model, tokenizer, probes, batch_size=8, max_length=None, released=RELEASED
    )  # small batches: float64 logits over 50k tokens
    some = probes.iloc[::13]  # one forward per probe in the reference: every 13th of the 1,950 (150 probes)
    with torch.no_grad():
        want = [reference_score(model, *encode_probe(tokenizer, i, t)) for i, t in zip(some.input, some.target)]
    torch.testing.assert_close(
        torch.tensor(got.per_token.to_numpy()[::13]), torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-9
    )
    want = reference_released(model, tokenizer, probes, 16, 4, pad_id=1)
    torch.testing.assert_close(
        torch.tensor(got.released.to_numpy()), torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-9
    )
    # Dividing by the padded batch length shrinks the score: the released one is the smaller in magnitude.
    assert (got.released.abs() < got.per_token.abs()).mean() > 0.9
