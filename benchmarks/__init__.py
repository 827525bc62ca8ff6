"""Benchmark scripts of vis2mus-live (they print figures) and the JACK rig they share with the tests."""
