"""The PySide6 desktop app (`enhancer-gui`): open a photo, enhance it, compare, batch a folder.

Only the engine's public functions are called from here; every engine error is an `EnhancerError` whose message is
shown to the user as it is.
"""
