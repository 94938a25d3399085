"""Datasets: a registry of named sets, offline sources, transforms and episodes."""
from metaunsup.data.episodes import Episode, sample_episode, sample_few_shot
from metaunsup.data.registry import (
    PAPER_RESOLUTIONS,
    RESOLUTION_RANGE,
    Dataset,
    DatasetInfo,
    dataset_info,
    list_datasets,
    load,
)

__all__ = ["PAPER_RESOLUTIONS", "RESOLUTION_RANGE", "Dataset", "DatasetInfo", "Episode",
           "dataset_info", "list_datasets", "load", "sample_episode", "sample_few_shot"]
