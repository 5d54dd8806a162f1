"""Image files in and out: decoding, the words a file carries, folder collection, uploads, thumbnails, the
pixel work of a region edit (:mod:`rag.media.region`) and content credentials (:mod:`rag.media.credentials`).
"""

from rag.media import certificates, credentials, region
from rag.media.collect import MAX_FOLDER_BYTES, MAX_PATH_BYTES, collect_files, display_name, is_utf8, shown_path
from rag.media.encode import encode_png, encode_reference, png_text
from rag.media.images import Header, decode, file_text, jpeg_header
from rag.media.ocr import OcrEngine, OcrLine, OcrReading, TextReader, make_engine, reader_for
from rag.media.thumbs import LARGE_SIZE, THUMB_SIZE, cached_thumbnail, placeholder, thumbnail
from rag.media.uploads import expand_uploads
from rag.media.watermark import watermarked

__all__ = ["cached_thumbnail", "certificates", "collect_files", "credentials", "decode", "display_name", "encode_png", "encode_reference", "expand_uploads", "file_text", "Header", "is_utf8", "jpeg_header", "make_engine", "OcrEngine", "OcrLine", "OcrReading", "LARGE_SIZE", "MAX_FOLDER_BYTES", "MAX_PATH_BYTES", "placeholder", "png_text", "reader_for", "region", "shown_path", "TextReader", "THUMB_SIZE", "thumbnail", "watermarked"]
