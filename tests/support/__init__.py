"""Support code shared by the tests and the benchmarks: the private JACK rig and MIDI peers (``jackrig``), random poly-dis weights (``scratch``)."""
