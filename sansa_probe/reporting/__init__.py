"""Whether to trust a result: what produced it (:mod:`.identity`), degenerate-result warnings in words (:mod:`.sanity`), the segmentation preview figure (:mod:`.preview`)."""
