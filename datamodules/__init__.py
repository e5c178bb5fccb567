"""Data for likeness: screenshot sets on disk and the DataModule that batches them."""
from datamodules.cross_domain import CrossDomainDataModule

__all__ = ["CrossDomainDataModule"]
