import os


def read_lines(path):
    """Return the lines of the file at path, without trailing newlines."""
    with open(path) as handle:
        return [line.rstrip("\n") for line in handle]


def count_words(text):
    """Return the number of words in text."""
    return len(text.
