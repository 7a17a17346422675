"""bioplaus-bench: biologically plausible learning rules on one harness."""

from bioplaus_bench.registry import (
    get_algorithm,
    get_arch,
    get_task,
    load_all,
    register_algorithm,
    register_arch,
    register_task,
)

__version__ = "0.1.0"
__all__ = ["get_algorithm", "get_arch", "get_task", "load_all", "register_algorithm", "register_arch",
           "register_task", "__version__"]
