"""Data sources: text corpora packed into token windows (text.py); tasks come later."""

from glrnn.data.text import TextData

__all__ = ["TextData"]
