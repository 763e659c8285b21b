"""minimtl: a small, readable deep-learning engine (work in progress)."""
