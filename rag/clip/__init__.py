"""CLIP embeddings behind :class:`Embedder`: open_clip's image and text towers, and the precision they run in.
"""

from rag.clip.embedder import ClipEmbedder, Embedder, ImageInput

__all__ = ["ClipEmbedder", "Embedder", "ImageInput"]
