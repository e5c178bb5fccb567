"""`make demo`: the whole method at CPU scale (studies/demo/README.md); `python -m studies.demo`."""
