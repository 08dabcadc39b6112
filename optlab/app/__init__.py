"""The Hydra application: ``python -m optlab``, its configs, sweeps and callbacks.

The library underneath (``engine``, ``rundir``, ``report``) does not import Hydra.
"""
