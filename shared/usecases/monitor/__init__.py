"""The monitor: one tick (tick.py) and the steps it calls (outcomes, pool health, clean-up, URL renewal)."""
