"""Data for likeness: screenshot and photo sets on disk and the DataModule that batches them."""

from datamodules.cross_domain import CrossDomainDataModule
from datamodules.photos import PhotoSet, align_to_template, open_photo_set
from datamodules.sampler import IdentityBatchSampler

__all__ = ["CrossDomainDataModule", "IdentityBatchSampler", "PhotoSet", "align_to_template", "open_photo_set"]
