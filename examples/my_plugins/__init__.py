"""A user's own optlab plugins, kept outside optlab: an objective and a solver."""
