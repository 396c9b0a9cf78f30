"""Shared helpers for the side-by-side benchmark scripts (not a test module).

Interleaved timing (A B A B ... after warm-up, medians), the machine's measured fp32 matmul peak, and
table printing. Timings on a shared machine are noisy; interleaving keeps the ratios fair.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

# Before any JAX computation here (the matmul peak below creates the backend): `import jaxinpaint` sets the
# XLA:CPU convolution flag (jaxinpaint.xla_cpu), which only takes effect if it comes first.
import jaxinpaint  # noqa: F401  pylint: disable=unused-import


def block(value):
  """Waits for JAX arrays (any pytree) or returns torch/numpy values unchanged."""
  try:
    import jax
    return jax.block_until_ready(value)
  except ImportError:
    return value


def time_call(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  block(fn())
  return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
  """Runs every fn `warmup` times, then `repeats` rounds of A B C ...; returns the per-fn timings."""
  for fn in fns.values():
    for _ in range(warmup):
      block(fn())
  times: dict[str, list[float]] = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      times[name].append(time_call(fn))
  return times


def median(values: list[float]) -> float:
  return statistics.median(values)


def matmul_peak_flops(size: int = 2048, repeats: int = 5) -> float:
  """Measured fp32 FLOP/s of a jitted `jnp.dot` of two size x size matrices (best of `repeats`)."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
  dot = jax.jit(jnp.dot)
  block(dot(a, b))
  best = min(time_call(lambda: dot(a, b)) for _ in range(repeats))
  return 2.0 * size ** 3 / best


def torch_threads() -> int:
  """Thread count for torch: every core, as JAX/XLA uses (overridable with BENCH_TORCH_THREADS)."""
  return int(os.environ.get("BENCH_TORCH_THREADS", os.cpu_count() or 1))


def fmt_table(header: list[str], rows: list[list[object]]) -> str:
  """A GitHub-markdown table."""
  cells = [[str(c) for c in header]] + [[c if isinstance(c, str) else f"{c:.3g}" for c in row] for row in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
  lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
  lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
  return "\n".join(lines)


def seeded(shape, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
