"""Benchmark tasks, one file each; every module registers its ``TaskSpec`` with ``register_task``."""
