"""Cited question answering over AI-governance documents.

    >>> from assistant import Assistant, Settings
    >>> assistant = Assistant(Settings(corpus_dir="corpus", index_dir="indexes"))  # doctest: +SKIP
    >>> assistant.ingest()                                                         # doctest: +SKIP
    >>> assistant.ask("What fines apply to prohibited AI practices?")["answer"]   # doctest: +SKIP
"""

from assistant.engine import Assistant, QuestionError
from assistant.retrieval import Filters
from assistant.settings import Settings

__all__ = ["Assistant", "Filters", "QuestionError", "Settings"]
