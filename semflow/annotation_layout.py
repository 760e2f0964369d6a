"""The annotation folder's layout, shared by the app that writes it and the training that reads it back: its folders
and files, the metadata columns that name each pair's files, and the dataset columns `datasets` loads them as."""

from __future__ import annotations

IMAGES_FOLDER = "images"  # images/<name>.png: the photo (or the synthesized image of a painted layout)
MASKS_FOLDER = "masks"  # masks/<name>.png: its class ids, mode "L"
METADATA_FILE = "metadata.jsonl"  # one row per pair
# imagefolder's convention: a "<column>_file_name" key names a file that loads as the image column "<column>";
# "file_name" is the image itself, loaded as "image"
IMAGE_FILE_KEY, MASK_FILE_KEY = "file_name", "mask_file_name"
IMAGE_COLUMN, MASK_COLUMN = "image", MASK_FILE_KEY.removesuffix("_file_name")
FILE_KEYS = (IMAGE_FILE_KEY, MASK_FILE_KEY)
