"""Research studies: each folder answers one question, reproducible by one command (studies/README.md)."""
