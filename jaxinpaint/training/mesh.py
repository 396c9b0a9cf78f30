"""Device mesh and data placement for data-parallel training.

One 1-D `jax.sharding.Mesh` with axis `'data'` over every device of every process. Batches are sharded
along their leading axis (`P('data')`), the train state is replicated (`P()`). Under `jax.jit` with these
shardings a plain mean over the batch axis is a mean over the *global* batch, so BatchNorm statistics and
gradients are those of the global batch without any explicit `pmean`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_INITIALIZED = False


def initialize_distributed(*, coordinator_address: str = '', num_processes: int = 1, process_id: int = 0,
                           local_device_ids: Any = None) -> None:
  """Calls `jax.distributed.initialize` when several processes are configured (no-op for one).

  On CPU the cross-process collectives use gloo (JAX's default `jax_cpu_collectives_implementation`);
  it is set explicitly so an environment override cannot silently break the all-reduces.
  """
  global _INITIALIZED
  if num_processes <= 1 or _INITIALIZED:
    return
  if not coordinator_address:
    raise ValueError('config.num_processes > 1 needs config.coordinator_address (host:port of process 0)')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id, local_device_ids=local_device_ids)
  _INITIALIZED = True


def create_mesh() -> Mesh:
  """A 1-D mesh named 'data' over all (global) devices.

  Auto axis type: the compiler propagates shardings from the jit in/out shardings, so model code needs no
  sharding annotations (explicit-sharding meshes would demand them on every reshape).
  """
  return jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_local_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles a global sharded batch from this process's slice (`make_array_from_process_local_data`).

  Every process passes its own `global_batch / num_processes` rows; with one process this is a plain
  sharded `device_put`.
  """
  sharding = data_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def put_global_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Shards a batch that every process holds in full (e.g. the fixed eval/sample batches)."""
  n, i = jax.process_count(), jax.process_index()
  local = {}
  for k, v in batch.items():
    v = np.asarray(v)
    rows = v.shape[0] // n
    local[k] = v[i * rows:(i + 1) * rows]
  return put_local_batch(local, mesh)


def to_host(tree: Any) -> Any:
  """Fetches (replicated or fully addressable) arrays to numpy on this process."""
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)
