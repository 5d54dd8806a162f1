"""Image files in and out: decoding, the words a file carries, folder collection, uploads and thumbnails.
"""

from rag.media.collect import MAX_FOLDER_BYTES, MAX_PATH_BYTES, collect_files, display_name, is_utf8, shown_path
from rag.media.encode import encode_png, encode_reference, png_text
from rag.media.images import decode, file_text
from rag.media.thumbs import LARGE_SIZE, THUMB_SIZE, cached_thumbnail, placeholder, thumbnail
from rag.media.uploads import expand_uploads

__all__ = ["cached_thumbnail", "collect_files", "decode", "display_name", "encode_png", "encode_reference", "expand_uploads", "file_text", "is_utf8", "LARGE_SIZE", "MAX_FOLDER_BYTES", "MAX_PATH_BYTES", "placeholder", "png_text", "shown_path", "THUMB_SIZE", "thumbnail"]
