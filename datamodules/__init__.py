"""Data for likeness: screenshot and photo sets on disk and the DataModule that batches them."""

from datamodules.cross_domain import CrossDomainDataModule
from datamodules.photo_sets import PhotoSet, PhotoSource, open_photo_set
from datamodules.photos import align_to_template
from datamodules.sampler import IdentityBatchSampler

__all__ = [
    "CrossDomainDataModule",
    "IdentityBatchSampler",
    "PhotoSet",
    "PhotoSource",
    "align_to_template",
    "open_photo_set",
]
