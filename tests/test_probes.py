"""Probe scores against a brute-force per-token reference (float64, every probe checked)."""

import pandas as pd
import pytest
import torch

from kentropy.probes import encode_probe, score_probes
from kentropy.world import fictional_record

from .conftest import tiny_olmo


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory):
    world, tokenizer, model = tiny_olmo(tmp_path_factory.mktemp("probes"), n_fictional=4, noise=0.05)
    model = model.to(torch.float64)
    records = [fictional_record(p, world.country_of[p.city], i) for i, p in enumerate(world.fictional)]
    probes = pd.DataFrame([{"input": i, "target": t} for r in records for kind in ("mem", "gen", "hard_gen")
                           for i, t in zip(r[f"{kind}_input"], r[f"{kind}_target"])])
    return model, tokenizer, probes


def reference_score(model, ids: list[int], n_target: int) -> float:
    """One unpadded forward; log p(token_i | tokens_<i) summed one target token at a time."""
    logits = model(input_ids=torch.tensor([ids])).logits[0].to(torch.float64)
    total = 0.0
    for pos in range(len(ids) - n_target, len(ids)):
        total += torch.log_softmax(logits[pos - 1], dim=-1)[ids[pos]].item()
    return total / n_target


def test_target_tokens_are_those_of_the_spaced_target(model_and_tokenizer):
    _, tokenizer, _ = model_and_tokenizer
    ids, n = encode_probe(tokenizer, "Ana Kolo was born in ", "Rimasa ")
    assert ids[-n:] == tokenizer(" Rimasa", add_special_tokens=False)["input_ids"]
    assert ids[:-n] == tokenizer("Ana Kolo was born in")["input_ids"]


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_scores_match_the_brute_force_reference(model_and_tokenizer, batch_size):
    model, tokenizer, probes = model_and_tokenizer
    got = score_probes(model, tokenizer, probes, batch_size=batch_size)
    with torch.no_grad():
        want = [reference_score(model, *encode_probe(tokenizer, i, t)) for i, t in zip(probes.input, probes.target)]
    assert len(got) == len(probes) == 60
    assert len({len(encode_probe(tokenizer, i, t)[0]) for i, t in zip(probes.input, probes.target)}) > 1  # padding used
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want, dtype=torch.float64), rtol=1e-10, atol=1e-10)


def test_truncation_keeps_the_target(model_and_tokenizer):
    model, tokenizer, probes = model_and_tokenizer
    one = probes.iloc[:1]
    ids, n = encode_probe(tokenizer, one.input.iloc[0], one.target.iloc[0])
    got = score_probes(model, tokenizer, one, batch_size=1, max_length=n + 2)
    with torch.no_grad():
        want = reference_score(model, ids[-(n + 2):], n)
    assert got[0] == pytest.approx(want, rel=1e-10)
