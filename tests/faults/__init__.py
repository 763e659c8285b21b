"""Fault injection: kills, interrupts, corrupt files, bad input at every boundary."""
