"""Test configuration: two host CPU devices (for sharding tests), deterministic CPU, strict JAX.

Strict dtype promotion for the whole suite: no implicit int/float or width mixing
(``jnp.float32 + jnp.int32`` raises), so code that relies on JAX's promotion lattice
fails here rather than silently computing in another precision.
"""
import os
import tempfile

# Must be set before JAX initialises its backends.
# Tests use tiny networks, where XLA's backend optimisation costs more compile
# time than it saves at run time (it roughly halves compilation here).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2 "
                      "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
# A persistent compilation cache shared by this run's processes (the CLI
# subprocesses of end-to-end tests reuse what the test process compiled).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "metaunsup-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
jax.config.update("jax_numpy_dtype_promotion", "strict")


import pytest  # noqa: E402


@pytest.fixture
def standard_promotion():
    """JAX's standard dtype promotion for one test, where a third-party library needs it.

    Only for evosax's strategies (they mix bool and float32 arrays internally); use
    ``@pytest.mark.usefixtures("standard_promotion")`` and say why.
    """
    with jax.numpy_dtype_promotion("standard"):
        yield
