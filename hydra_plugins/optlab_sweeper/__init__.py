"""optlab's Hydra sweeper (``hydra/sweeper=optlab``, the default of ``python -m optlab``)."""
