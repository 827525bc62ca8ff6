"""Benchmark scripts of vis2mus-live: they print figures (the JACK rig they share with the tests is tests/support/jackrig.py)."""
