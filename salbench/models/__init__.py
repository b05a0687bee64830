"""Saliency models: a registry fed by the ``salbench.models`` entry points.

Built-ins (``uniform``, ``center_bias``, ``gold``, ``shallow_mse``,
``shallow_kl``) and third-party plugins register the same way, as entry points
in the ``salbench.models`` group; see ``docs/examples/salbench-example-plugin``.

Examples
--------
>>> from salbench.models import create_model, list_models
>>> "shallow_kl" in list_models()
True
>>> create_model("uniform", output_size=(4, 4)).output_size
[4, 4]
"""

from salbench.models._registry import (
    GROUP,
    ModelRegistry,
    UnknownModelError,
    create_model,
    default_registry,
    list_models,
    plugin_failures,
    register_model,
)
from salbench.models.base import SaliencyModel

__all__ = [
    "GROUP",
    "ModelRegistry",
    "SaliencyModel",
    "UnknownModelError",
    "create_model",
    "default_registry",
    "list_models",
    "plugin_failures",
    "register_model",
]
