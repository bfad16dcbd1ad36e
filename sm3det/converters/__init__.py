"""Checkpoints of other code bases in this repository's layout: the authors'
SM3Det (:mod:`.sm3det_original`). ``tools/model_converters/`` holds their
command lines."""
