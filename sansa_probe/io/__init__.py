"""Reading and writing the user's files: images as viewers show them (:mod:`.images`), mask files and COCO RLE (:mod:`.masks`), files written atomically (:mod:`.atomic`)."""
