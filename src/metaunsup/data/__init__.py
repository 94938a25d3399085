"""Datasets: a registry of named sets, offline sources, transforms and episodes.

    >>> from metaunsup.data import load, list_datasets
    >>> ds = load("fashion_mnist", resolution=14)   # x_train float32 [60000, 196]
    >>> [(i.name, i.available()) for i in list_datasets()]

See ``registry`` (names, splits, caching), ``sources`` (offline copies, checked
downloads), ``transforms`` (bilinear resize), ``episodes`` (few-shot sampling).
"""
from metaunsup.data.episodes import (Episode, check_shots, few_shot_indices, sample_episode,
                                     sample_few_shot, stratified_split)
from metaunsup.data.registry import (
    PAPER_RESOLUTIONS,
    RESOLUTION_RANGE,
    Dataset,
    DatasetInfo,
    dataset_info,
    list_datasets,
    load,
)
from metaunsup.data.sources import download
from metaunsup.data.transforms import resize_images, to_unit_range

__all__ = [
    "PAPER_RESOLUTIONS",
    "RESOLUTION_RANGE",
    "Dataset",
    "DatasetInfo",
    "Episode",
    "check_shots",
    "dataset_info",
    "download",
    "few_shot_indices",
    "list_datasets",
    "load",
    "resize_images",
    "sample_episode",
    "sample_few_shot",
    "stratified_split",
    "to_unit_range",
]
