"""Start-up of a script job, cold (a fresh interpreter imports torch, transformers, DeepSpeed, lm-eval) vs warm
(forked from kentropy.pipeline.warm's server), interleaved, on a script that imports what the compute jobs import and
builds a tiny OLMo model. Prints the median wall time of each and their ratio.

    python bench/warm_start.py --repeats 5
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kentropy.pipeline.warm import Server

SCRIPT = """import torch, transformers, deepspeed, lm_eval.evaluator, pandas, pyarrow.parquet
from transformers import OlmoConfig, OlmoForCausalLM
torch.set_num_threads(1)
model = OlmoForCausalLM(OlmoConfig(vocab_size=1024, hidden_size=64, intermediate_size=256, num_hidden_layers=4,
                                   num_attention_heads=4))
print(float(model(torch.zeros(1, 8, dtype=torch.long)).logits.sum()))
"""


def timed(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        Path(work, "job.py").write_text(SCRIPT)
        os.chdir(work)
        server = Server({}, "warm.log")  # waits until it listens
        cold, hot = [], []
        try:
            for _ in range(args.repeats):
                cold.append(timed([sys.executable, "job.py"], work))
                warm = [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", server.path, "job.py"]
                hot.append(timed(warm, work))
        finally:
            server.stop()
    c, w = statistics.median(cold), statistics.median(hot)
    print(
        f"cold {c:.2f} s, warm {w:.2f} s (median of {args.repeats}): warm/cold = {w / c:.3f}, saved {c - w:.2f} s a job"
    )


if __name__ == "__main__":
    main()
