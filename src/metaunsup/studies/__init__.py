"""The paper's generalisation studies as one-command experiments, and their report.

``metaunsup study NAME --workdir DIR [--rule R] [--quick] [--set KEY=VALUE ...]``
runs one study (:func:`run_study`); ``metaunsup report DIR [DIR ...]`` renders
study workdirs and demo reports as one HTML page and a Markdown file
(:func:`metaunsup.studies.report.render`).

| study | module | what it varies |
|---|---|---|
| widths, depths, nonlinearities, text | :mod:`.grid` | hidden width, layers, activation, shots on text |
| meta_overfit | :mod:`.overfit` | rules along a meta-training run |
| moons | :mod:`.moons` | inner steps on 2-D two moons (features and accuracy) |
| filters | :mod:`.filters` | method (first-layer weights as images) |
| surrogate | :mod:`.surrogate` | inner steps (VAE / autoencoder loss vs accuracy) |
"""
from metaunsup.studies import filters, grid, moons, overfit, surrogate  # noqa: F401 (register)
from metaunsup.studies.base import (
    Study,
    Table,
    get_study,
    read_rows,
    read_study,
    register_study,
    run_study,
    study_names,
)

__all__ = ["Study", "Table", "get_study", "read_rows", "read_study", "register_study",
           "run_study", "study_names"]
