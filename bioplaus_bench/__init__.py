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
__all__ = ["get_algorithm", "get_arch", "get_task", "load_all", "load_records", "register_algorithm",
           "register_arch", "register_task", "run", "__version__"]


def run(algo: str, task: str, force: bool = False, **fields):  # noqa: ANN201 (a record dict)
    """Train one configuration and return its record; see ``bioplaus_bench.api.run``."""
    from bioplaus_bench.api import run as _run

    return _run(algo, task, force=force, **fields)


def load_records(folder):  # noqa: ANN001, ANN201 (a path; a pandas DataFrame)
    """Every run record below ``folder`` as a DataFrame; see ``bioplaus_bench.report.load_records``."""
    from bioplaus_bench.report import load_records as _load

    return _load(folder)
