#!/usr/bin/env bash
# Start a JACK server on the dummy driver when no JACK server runs and no ALSA sequencer exists
# (containers, CI, machines without sound hardware). With ALSA or a running JACK this does nothing.
set -u
if jack_lsp >/dev/null 2>&1; then exit 0; fi
if [ -e /dev/snd/seq ]; then exit 0; fi
if ! command -v jackd >/dev/null; then
  echo "start_jack: jackd is not installed (apt-get install jackd2)"; exit 0
fi
nohup jackd --no-realtime -d dummy -r 48000 -p 128 >/tmp/vis2mus-jackd.log 2>&1 &
for _ in $(seq 50); do jack_lsp >/dev/null 2>&1 && { echo "start_jack: JACK dummy server running"; exit 0; }; sleep 0.1; done
echo "start_jack: jackd did not start, see /tmp/vis2mus-jackd.log"
