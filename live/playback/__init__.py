"""From segments to MIDI: clock, scheduler, MIDI output port and the recorder."""
