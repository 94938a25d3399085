"""Test configuration: two host CPU devices (for sharding tests), deterministic CPU."""
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


import pytest  # noqa: E402


@pytest.fixture
def strict_dtypes():
    """JAX's strict dtype promotion (no implicit int/float or width mixing) for one test.

    Opt in per module with ``pytestmark = pytest.mark.usefixtures("strict_dtypes")``;
    modules that pass under it use it (turning it on for the whole suite needs
    fixes in code that still relies on implicit promotion).
    """
    with jax.numpy_dtype_promotion("strict"):
        yield
