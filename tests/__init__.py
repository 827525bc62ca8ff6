"""The test suite of vis2mus-live (a package so that benchmarks can import its support code)."""
