"""Generation throughput: tokens/s for one sample and for a batch of 16 (median of runs).

    python benchmarks/generate_speed.py --checkpoint checkpoints/jaychou_char

Model loading is excluded; each run generates --length tokens per sample from 星星 with the
default sampling settings. The batch's ratio to one sample shows what batching buys.
"""

from __future__ import annotations

import argparse
import time

import harness as H

from lyricgen.backends.numpy_run import load_numpy_run
from lyricgen.backends.steppers import TorchStepper
from lyricgen.craft.generate import SamplingOptions, generate
from lyricgen.training.loading import load_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="checkpoints/jaychou_char")
    ap.add_argument("--length", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--start", default="星星")
    args = ap.parse_args()
    _, vocab, model = load_run(args.checkpoint)
    print(f"{H.machine_line()}; model {args.checkpoint} (vocab {len(vocab)})")
    _, _, stepper = load_numpy_run(args.checkpoint)
    for name, backend in (("numpy", stepper), ("torch", TorchStepper(model))):
        base = None
        for batch in (1, 16):
            rates = []
            for r in range(args.runs + 1):
                opts = SamplingOptions(length=args.length, num_samples=batch, seed=r)
                t0 = time.perf_counter()
                generate(backend, vocab, args.start, opts)
                if r:  # the first run warms up
                    rates.append(batch * args.length / (time.perf_counter() - t0))
            med = H.median(rates)
            base = base or med
            print(
                f"{name} backend, batch {batch:>2}: median {med:,.0f} tokens/s over {args.runs} "
                f"runs (x{med / base:.1f} of one sample)"
            )


if __name__ == "__main__":
    main()
