"""The task distribution: datasets x augmentation x architecture x inner length.

``pool`` (the data on the device), ``augment``, ``archs`` (architecture groups),
``distribution`` (meta-training tasks), ``rule_task`` (the truncated inner task of
gradient estimators), ``episode`` (the augmented few-shot episode every task scores
on) and ``suite`` (the fixed validation and transfer suites).
"""
