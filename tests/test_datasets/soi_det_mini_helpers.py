"""Helpers of the dataset tests: the size of the session's mini set."""
# Size of the session's mini set (see conftest.py): images per part and split.
NUM_TRAIN, NUM_TEST = 8, 4
