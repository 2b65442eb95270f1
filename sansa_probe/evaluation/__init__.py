"""Few-shot evaluation: the episode loop, HSNet's metric (:mod:`.metrics`), the paired comparison of two models (:mod:`.comparison`), negative prompts (:mod:`.negatives`)."""
