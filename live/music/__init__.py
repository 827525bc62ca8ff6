"""The shared music representation: note arrays, chord rows, MIDI files (the only part of ``live`` that ``model`` imports)."""
