"""Offline tools: rendering a piece to a MIDI file, the listening study, the equivariance report."""
