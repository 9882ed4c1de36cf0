"""justering: protocol extracts from meeting to certified, archived PDF."""

__version__ = "0.1.0"
