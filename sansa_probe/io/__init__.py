"""Reading and writing the user's files: images as viewers show them (:mod:`.images`), files written atomically (:mod:`.atomic`)."""
