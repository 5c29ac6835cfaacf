"""Training recipe for the project's own models: data, degradations, training, evaluation and export.

Run as `python -m enhancer.training --help`.
"""
