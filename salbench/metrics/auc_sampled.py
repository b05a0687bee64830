"""Sampled AUC-Borji and shuffled AUC (placeholder: being written, see docs/architecture.md)."""


def auc_borji(*args, **kwargs):  # replaced by the real implementation
    raise NotImplementedError("auc_borji is being implemented")


def auc_shuffled(*args, **kwargs):  # replaced by the real implementation
    raise NotImplementedError("auc_shuffled is being implemented")


def auc_borji_expected(*args, **kwargs):  # replaced by the real implementation
    raise NotImplementedError


def auc_shuffled_expected(*args, **kwargs):  # replaced by the real implementation
    raise NotImplementedError
