"""Which objective lets the demo regression recover parameters (studies/objective_variants/README.md)."""
