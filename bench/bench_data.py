"""Throughput of the jaxinpaint input pipeline (batches/s), e.g. 256x256, batch 8, masks + edges.

Usage:
  python bench/bench_data.py                       # natural/ photos + NVIDIA masks, 256, batch 8, 2 workers
  python bench/bench_data.py --masks irregular --workers 0 --batches 20
  python bench/bench_data.py --help

Prints the per-example cost of each stage (decode, crop/flip, mask, gray+Canny) measured serially, then
the pipeline's batches/s with the requested number of worker threads. This is a script, not a test: the
number depends on the machine and on whatever else is running on it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import numpy as np

from jaxinpaint import data, edges, masks

_SHARED = pathlib.Path(os.environ.get("JAXINPAINT_SHARED_DATA",
                                      pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))


def _stage_costs(args, n: int = 16) -> dict[str, float]:
  source = data.open_source(args.images)
  sampler = masks.from_spec(args.masks)
  rng = np.random.default_rng(0)
  t = {"decode": 0.0, "crop/flip": 0.0, "mask": 0.0, "gray+canny": 0.0}
  for i in range(n):
    t0 = time.perf_counter()
    img = source.load(i % len(source))
    t1 = time.perf_counter()
    img = data.preprocess(img, image_size=args.image_size, crop=args.crop, rng=rng, flip=True)
    t2 = time.perf_counter()
    sampler(rng, (args.image_size, args.image_size))
    t3 = time.perf_counter()
    if not args.no_edges:
      edges.canny(edges.rgb_to_gray(img), sigma=2.0)
    t4 = time.perf_counter()
    for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
      t[k] += dt / n
  return t


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--images", default=str(_SHARED / "natural"), help="image source spec")
  p.add_argument("--masks", default=str(_SHARED / "masks_nvidia_test300"), help="mask spec")
  p.add_argument("--image-size", type=int, default=256)
  p.add_argument("--batch-size", type=int, default=8)
  p.add_argument("--workers", type=int, default=2, help="decoding threads (0 = main thread)")
  p.add_argument("--prefetch", type=int, default=2, help="batches decoded ahead")
  p.add_argument("--crop", default="random", choices=data.CROP_MODES)
  p.add_argument("--no-edges", action="store_true", help="skip gray + Canny")
  p.add_argument("--batches", type=int, default=30, help="timed batches")
  p.add_argument("--warmup", type=int, default=3, help="untimed batches first")
  args = p.parse_args()

  print(f"cpu cores visible: {os.cpu_count()}, load average: {os.getloadavg()}")
  costs = _stage_costs(args)
  print("serial per-example cost (ms): " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in costs.items())
        + f"; total {sum(costs.values()) * 1e3:.1f}")

  pipe = data.create_train_pipeline(images=args.images, masks=args.masks, image_size=args.image_size,
                                    batch_size=args.batch_size, seed=0, with_edges=not args.no_edges,
                                    crop=args.crop, num_workers=args.workers, prefetch=args.prefetch)
  with pipe:
    for _ in range(args.warmup):
      next(pipe)
    t0 = time.perf_counter()
    for _ in range(args.batches):
      batch = next(pipe)
    dt = time.perf_counter() - t0
  shapes = {k: v.shape for k, v in batch.items()}
  rate = args.batches / dt
  print(f"pipeline: {rate:.2f} batches/s = {rate * args.batch_size:.1f} images/s "
        f"(size {args.image_size}, batch {args.batch_size}, workers {args.workers}, "
        f"edges {not args.no_edges}, masks {args.masks!r}); batch shapes {shapes}; "
        f"skipped {pipe.num_skipped}")


if __name__ == "__main__":
  main()
