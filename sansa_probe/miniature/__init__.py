"""The miniature: a small SAM2 pretrained here on procedural videos, with SANSA adapters per fold."""
