"""What the notebooks call: parameters from the environment and the model the commands would build (:mod:`.params`), few-shot examples and their figure (:mod:`.quickstart`)."""
