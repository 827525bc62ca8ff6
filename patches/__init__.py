"""Controller patches for vis2mus-live (Pure Data, Max, TouchOSC) and the generator that writes them."""
