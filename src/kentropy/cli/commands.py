"""``kentropy``: one unit of the DAG's work on one checkpoint, from a shell, with the rules' own library code.

    kentropy entropy     --model PATH_OR_REPO[@REV] [--revision REV | --step N] --corpus FILE --out OUT.parquet
    kentropy probes      --model ... --paraphrase FILE --once FILE --out OUT.parquet
    kentropy downstream  --model ... --tasks arc_easy,sciq --out OUT.parquet
    kentropy resuscitate --model ... (--coef COEF.npy | --corpus FILE) --p 50 --q 1 --out DIR
    kentropy manifests   list | refresh NAME

``--model`` is a ``save_pretrained`` folder, or a Hub repo read through the Hugging Face cache (offline with
``HF_HUB_OFFLINE=1``), at ``--revision`` (branch, tag or commit; ``repo@rev`` says the same), at the branch
that holds ``--step``, or at ``main``. Hub weights are checked against the Hub's hashes before they are loaded
(``kentropy.sources.hub.verified_snapshot``). Only ``downstream`` needs an extra (``pip install 'kentropy[eval]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .arguments import (
    add_debug_argument,
    add_model_arguments,
    add_output_arguments,
    existing_file,
    keyed,
    percent,
    positive_finite,
    positive_int,
    resolve_model,
    run_command,
)

#: Defaults of ``kentropy entropy``: the paper configs' measurement (OLMo's 2,048-token instances, fp32).
ENTROPY_DEFAULTS = {"max_length": 2048, "dtype": "float32", "batch_size": 8, "average": "instance"}


def read_corpus(path: str, count: int | None):
    """A corpus file: Parquet (``text`` or ``input_ids`` column) or text (one document per line)."""
    import pandas as pd

    from ..sources.corpora import text_file_corpus

    if path.endswith(".parquet"):
        return pd.read_parquet(path).head(count)
    return text_file_corpus(path, count)


def add_entropy_arguments(parser: argparse.ArgumentParser, corpus_required: bool = True) -> None:
    from ..measurement.entropy_pass import AVERAGES

    parser.add_argument(
        "--corpus", type=existing_file, required=corpus_required, help="Parquet (text or input_ids column) or text file"
    )
    parser.add_argument("--count", type=positive_int, help="the corpus's first documents only")
    parser.add_argument(
        "--max-length", type=positive_int, default=ENTROPY_DEFAULTS["max_length"], help="tokens per document"
    )
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=ENTROPY_DEFAULTS["dtype"])
    parser.add_argument("--batch-size", type=positive_int, default=ENTROPY_DEFAULTS["batch_size"], help="speed only")
    parser.add_argument("--average", choices=AVERAGES, default=ENTROPY_DEFAULTS["average"])
    parser.add_argument(
        "--attention", choices=["fused", "eager"], default="fused", help="how attention entropy is read"
    )
    parser.add_argument("--device", help="default: cuda when available, else cpu")


def measure_entropy(args: argparse.Namespace, folder: str):
    from ..core.plan import EntropySpec
    from ..measurement.entropy_pass import measure_checkpoint

    spec = EntropySpec(Path(args.corpus).stem, args.max_length, args.average, args.attention, args.dtype)
    return spec, measure_checkpoint(folder, read_corpus(args.corpus, args.count), spec, args.batch_size, args.device)


def run_entropy(args: argparse.Namespace) -> None:
    from ..core.io import check_output_file, write_table

    check_output_file(args.out, args.force)
    folder, keys = resolve_model(args)
    spec, meter = measure_entropy(args, folder)
    table = keyed(meter.table(), keys)
    table["corpus"] = spec.corpus
    write_table(table, args.out)
    whole = table[table.layer.isna()].set_index("metric").value
    print(whole.to_string(), file=sys.stderr)


def run_probes(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    from ..core.io import check_output_file, write_table
    from ..core.plan import ReleasedEvaluator
    from ..evaluation.probes import probe_score_table
    from ..sources.architectures import load_causal_lm
    from ..sources.fictional_knowledge import probe_files

    check_output_file(args.out, args.force)
    folder, keys = resolve_model(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(folder, dtype=torch.float32).to(device)
    released = ReleasedEvaluator(args.released_batch_size, args.released_world_size)
    scores = probe_score_table(
        model,
        AutoTokenizer.from_pretrained(folder),
        probe_files(args.paraphrase, args.once),
        args.batch_size,
        args.max_length,
        released,
    )
    table = keyed(scores, keys)
    write_table(table, args.out)
    print(table.groupby(["split", "kind"])[["per_token", "released"]].mean().to_string(), file=sys.stderr)


def run_resuscitate(args: argparse.Namespace) -> None:
    import numpy as np

    from ..core.integrity import CHECKPOINT
    from ..core.io import atomic_file, check_output_dir, check_output_file
    from ..training.resuscitation import resuscitate_checkpoint
    from .arguments import UsageError

    if args.coef is None and args.corpus is None:
        raise UsageError("give --coef (a measured .npy) or --corpus (measured here)")
    check_output_dir(args.out, CHECKPOINT, args.force)
    coef = args.coef or f"{args.out.rstrip('/')}.coef.npy"  # measured here, kept beside the output
    if args.coef is None:
        check_output_file(coef, args.force, ours=is_npy)
    folder, _ = resolve_model(args)
    if args.coef is None:  # Algorithm 1's input
        _, meter = measure_entropy(args, folder)
        with atomic_file(coef) as tmp:
            np.save(tmp, meter.mean_abs_coefficients())
    record = resuscitate_checkpoint(folder, coef, args.p, args.q, args.out, force=args.force)
    print(f"{args.out}: {record['selected_per_layer']} memory vectors amplified per layer", file=sys.stderr)


def is_npy(path: Path) -> bool:
    """Whether ``path`` is a NumPy array file (what ``resuscitate`` may replace beside its output)."""
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def build_parser() -> argparse.ArgumentParser:
    from ..sources import manifests
    from . import downstream, train

    parser = argparse.ArgumentParser(prog="kentropy", description=__doc__.split("\n\n")[0])
    debug = argparse.ArgumentParser(add_help=False)
    add_debug_argument(debug)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_parser_with(debug))

    entropy = sub.add_parser("entropy", help="every registered metric of one checkpoint (entropy.parquet's rows)")
    add_model_arguments(entropy)
    add_entropy_arguments(entropy)
    add_output_arguments(entropy, "Parquet: model, revision, step, metric, layer, value, …")
    entropy.set_defaults(run=run_entropy)

    probes = sub.add_parser("probes", help="both probe scores of the fictional knowledge on one checkpoint")
    add_model_arguments(probes)
    probes.add_argument(
        "--paraphrase", type=existing_file, required=True, help="fictional-knowledge file of the paraphrase split"
    )
    probes.add_argument("--once", type=existing_file, required=True, help="fictional-knowledge file of the once split")
    add_output_arguments(probes, "Parquet: one row per probe, per_token and released")
    probes.add_argument("--batch-size", type=positive_int, default=64, help="probes per forward pass (speed only)")
    probes.add_argument("--max-length", type=positive_int, default=128, help="longer probes lose tokens from the left")
    probes.add_argument("--released-batch-size", type=positive_int, default=16, help="the released evaluator's batch")
    probes.add_argument("--released-world-size", type=positive_int, default=4, help="the released evaluator's ranks")
    probes.add_argument("--device", help="default: cuda when available, else cpu")
    probes.set_defaults(run=run_probes)

    evaluate = sub.add_parser("downstream", help="lm-eval benchmarks of one checkpoint (needs kentropy[eval])")
    downstream.add_arguments(evaluate)
    evaluate.set_defaults(run=downstream.run)

    resuscitate = sub.add_parser("resuscitate", help="Algorithm 1: amplify one checkpoint's least-used memory")
    add_model_arguments(resuscitate)
    add_entropy_arguments(resuscitate, corpus_required=False)
    resuscitate.add_argument(
        "--coef", type=existing_file, help="mean |coefficient| (.npy, layers x d_ff; default: measured on --corpus)"
    )
    resuscitate.add_argument("--p", type=percent, required=True, help="percent of each layer's memory vectors")
    resuscitate.add_argument("--q", type=positive_finite, required=True, help="amplification ratio, > 0")
    add_output_arguments(resuscitate, "folder of the resuscitated checkpoint")
    resuscitate.set_defaults(run=run_resuscitate)

    training = sub.add_parser("train", help="one continual-training run, as the training rule runs it (DeepSpeed)")
    train.add_arguments(training)
    training.set_defaults(run=train.run)

    listing = sub.add_parser("manifests", help="published checkpoint step lists")
    manifests.add_arguments(listing)
    listing.set_defaults(run=manifests.run)
    return parser


def _parser_with(*extra: argparse.ArgumentParser):
    """The subcommands' parser class: each also takes ``extra``'s arguments (``--debug``)."""

    class Parser(argparse.ArgumentParser):
        def __init__(self, parents=(), **kwargs):
            super().__init__(parents=[*parents, *extra], **kwargs)

    return Parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
