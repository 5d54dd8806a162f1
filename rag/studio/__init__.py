"""The one object the front ends call: :class:`Studio` wires settings, CLIP, the store and the generator.
"""

from rag.studio.studio import Studio

__all__ = ["Studio"]
