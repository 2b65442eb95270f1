"""Reading and writing users' files: mask files and COCO RLE (:mod:`sansa_probe.io.masks`)."""
