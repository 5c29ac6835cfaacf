"""Network definitions, one family per module, each key-for-key compatible with its official checkpoints."""
