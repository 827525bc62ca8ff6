"""The performance server: settings and the ``vis2mus-live`` command that wires the stages together."""
