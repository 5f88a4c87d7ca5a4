"""What a probe score's float32 bits depend on: the padded width of its batch, or also the batch's other rows.

On a finished run's last checkpoint, every distinct probe sequence (what one scoring runs through the model, as
``score_encoded`` builds it) is scored in the file-order batches the evaluation and the retention curves use, and
three more ways: beside only the longest sequence of its file-order batch (the same padded width, a batch of two),
alone without padding, and in batches of the same size sorted by length (fewer padded tokens). Printed for each:
the share of scores equal to the file-order ones bit for bit, the largest difference, and the padded tokens it
runs. If only the width matters, no batching that pads less can keep every score's bits.

    python bench/probe_padding_bits.py                  # the default config, after its DAG ran
"""

from __future__ import annotations

import numpy as np
from finished_run import FinishedRun, arguments

from kentropy.evaluation.probes import score_targets
from kentropy.sources.architectures import load_causal_lm


def main() -> None:
    done = FinishedRun.from_args(arguments(__doc__).parse_args())
    plan, checkpoint = done.plan, done.checkpoint
    model = load_causal_lm(str(checkpoint))  # as the jobs load it
    sequences, pad_id = done.probe_sequences()
    size = plan.speed.probe_batch_size

    def scores(batches: list[list[int]], first_only: bool = False) -> tuple[np.ndarray, int]:
        """Each sequence's summed target log-probability, scored in ``batches`` (lists of sequence numbers; with
        ``first_only``, a batch gives the score of its first sequence only), and the padded tokens they run."""
        out, tokens = np.empty(len(sequences)), 0
        for batch in batches:
            chunk = [sequences[i] for i in batch]
            sums = score_targets(model, chunk, len(chunk), pad_id, progress=False)[0]
            tokens += len(chunk) * max(len(ids) for ids, _ in chunk)
            kept = batch[:1] if first_only else batch
            out[kept] = sums[: len(kept)]
        return out, tokens

    in_order = [list(range(i, min(i + size, len(sequences)))) for i in range(0, len(sequences), size)]
    reference, reference_tokens = scores(in_order)
    longest = {i: max(batch, key=lambda j: len(sequences[j][0])) for batch in in_order for i in batch}
    by_length = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    ways = {
        "beside its batch's longest": scores([[i, longest[i]] for i in range(len(sequences))], first_only=True),
        "alone, unpadded": scores([[i] for i in range(len(sequences))]),
        "sorted by length": scores([by_length[i : i + size] for i in range(0, len(by_length), size)]),
    }
    print(f"{len(sequences)} sequences on {checkpoint}; file order, batch {size}: {reference_tokens:,} padded tokens")
    print("| scored | bit-equal | largest difference | padded tokens |\n|---|---|---|---|")
    for name, (got, tokens) in ways.items():
        print(f"| {name} | {np.mean(got == reference):.1%} | {np.abs(got - reference).max():.2e} | {tokens:,} |")


if __name__ == "__main__":
    main()
