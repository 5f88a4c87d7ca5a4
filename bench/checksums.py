"""Cost of verifying a checkpoint's bytes (kentropy.core.integrity.verify) against loading its weights, which the
job does anyway, on one multi-GB safetensors file, in the same run.

    python bench/checksums.py              # a 4 GiB file in a temporary folder (disk: 4 GiB; memory: 8)
    python bench/checksums.py --gib 8 --dir /scratch

Timed, median of interleaved repeats, with the file in the page cache (warm: what a job that just wrote
or read it sees); with --cold, each repeat first drops the page cache (root only), as a fresh node sees it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def timed(fn, cold: bool) -> float:
    if cold:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file, save_file

    from kentropy.core.integrity import verify, write_checksums

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp) / "step1"
        folder.mkdir()
        n = int(args.gib * 2**30 / 4 / 8)
        torch.manual_seed(0)
        save_file({f"w{i}": torch.randn(n) for i in range(8)}, folder / "model.safetensors")
        (folder / "config.json").write_text("{}")
        size = (folder / "model.safetensors").stat().st_size
        write_checksums(folder)
        steps = {
            # safetensors maps the file lazily; a model built from it copies every tensor, as clone() does
            "load (load_file + copy)": lambda: [t.clone() for t in load_file(folder / "model.safetensors").values()],
            "verify (sha256 of every file)": lambda: verify(folder),
        }
        times = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                times[name].append(timed(step, args.cold))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"file: {size / 2**30:.2f} GiB, {'cold' if args.cold else 'warm'} page cache, {args.repeats} repeats")
    for name, t in medians.items():
        print(f"  {name:40s} {t:7.2f} s  {size / t / 2**30:6.2f} GiB/s")
    load, check = medians.values()
    print(f"verify / load: {check / load:.2f}x (verify adds this fraction of a load to every job that reads it)")


if __name__ == "__main__":
    main()
