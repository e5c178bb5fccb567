"""The demo model and its Table 3 ablations over seeds (studies/ablations/README.md); `python -m studies.ablations`."""
