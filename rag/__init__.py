"""Banana Studio backend: embed, store, search and generate from an image library.

The UI and the CLI build one :class:`rag.studio.Studio` from :class:`rag.core.config.Settings`
and call it; nothing in this package imports gradio.
"""

__version__ = "0.1.0"
