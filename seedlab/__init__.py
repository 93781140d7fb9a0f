"""seedlab: teach a language model new knowledge and skills from a handful of examples."""

__version__ = "0.1.0"
