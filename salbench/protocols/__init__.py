"""Evaluation protocols: preprocessing of a prediction plus metric conventions.

    protocol = get_protocol("coursework")          # or mit / salicon / exact; metrics=("cc", ...)
    result = protocol.evaluate(predictions, records, seed=0)   # in memory
    result.summary()  # {metric: {"mean", "ci95", "n"}}

    scorer = protocol.scorer(GroundTruthView.from_dataset(ds), seed=0)  # chunk by chunk
    scorer.add(indices, predictions, records)
    result = scorer.result()

:func:`salbench.scoring.score_stream` runs a scorer over a dataset in bounded memory.
See ``../shared/docs/PROTOCOLS.md`` for what each protocol reproduces, and
``docs/protocols.md`` for parameters versus conventions.
"""

from __future__ import annotations

import difflib

from salbench.protocols.base import ConventionOverrideError, Protocol, ProtocolResult, Scorer
from salbench.protocols.inputs import FusedKernel, ImageInputs, lazy
from salbench.protocols.coursework import CourseworkProtocol, QuantisationWrapWarning
from salbench.protocols.exact import ExactProtocol
from salbench.protocols.mit import MITProtocol
from salbench.protocols.salicon import SaliconProtocol
from salbench.protocols.view import GroundTruthView

PROTOCOLS = {
    "mit": MITProtocol,
    "coursework": CourseworkProtocol,
    "salicon": SaliconProtocol,
    "exact": ExactProtocol,
}


def list_protocols() -> list:
    """Names of the available protocols."""
    return sorted(PROTOCOLS)


def _protocol_class(name: str):
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(str(name), PROTOCOLS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown protocol {name!r}; available: {', '.join(list_protocols())}.{hint}")
    return PROTOCOLS[name]


def get_protocol(name: str, metrics=None, **overrides) -> Protocol:
    """A protocol by name; ``overrides`` replace default parameters.

    Only the protocol's parameters may be overridden: a fixed convention raises
    :class:`ConventionOverrideError` (naming the protocol, the key and the overridable
    parameters), an unknown key or a bad value raises ValueError. ``metrics`` chooses a
    subset of the metrics it reports (registry names; an unknown name or one the protocol
    cannot supply raises ValueError saying why); default: all of them.
    """
    return _protocol_class(name)(metrics=metrics, **overrides)


def protocol_from_record(params: dict, metrics=None) -> Protocol:
    """The protocol a results file's ``protocol.params`` (with its ``name``) and metric set describe.

    ``metrics``: the names of the recorded metrics (default: every metric the protocol
    reports). What ``salbench check`` rebuilds protocols with.
    """
    if "name" not in params:
        raise ValueError("recorded protocol parameters lack the protocol 'name'")
    return _protocol_class(params["name"]).from_record(params, metrics=metrics)


def default_protocol_for(dataset_name: str) -> str:
    """``coursework`` for the coursework pickles (``salicon-pkl``), otherwise ``mit``."""
    return "coursework" if dataset_name == "salicon-pkl" else "mit"


__all__ = [
    "PROTOCOLS",
    "ConventionOverrideError",
    "GroundTruthView",
    "Scorer",
    "protocol_from_record",
    "CourseworkProtocol",
    "ExactProtocol",
    "FusedKernel",
    "ImageInputs",
    "MITProtocol",
    "Protocol",
    "ProtocolResult",
    "QuantisationWrapWarning",
    "SaliconProtocol",
    "default_protocol_for",
    "get_protocol",
    "lazy",
    "list_protocols",
]
