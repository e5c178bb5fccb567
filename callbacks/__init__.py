"""Training callbacks shared by the likeness LightningModules."""
