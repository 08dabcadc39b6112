"""The run engine: runs of a solver on an objective from one or many starts, every iterate kept.

Below it stand the roles (``objectives``, ``solvers``) and the derivatives (``autodiff``);
above it, the run directories on disk (``rundir``) and the Hydra application (``app``). It knows
nothing of either: each run writes its iterates to a sink its caller gives.
"""
