"""How much of the parameters a network reads from screenshots alone (studies/screenshot_readability/README.md)."""
