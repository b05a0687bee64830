"""Evaluation protocols: preprocessing of a prediction plus metric conventions.

    protocol = get_protocol("coursework")          # or mit / salicon / exact
    result = protocol.evaluate(predictions, records, seed=0)
    result.summary()  # {metric: {"mean", "ci95", "n"}}

See ``../shared/docs/PROTOCOLS.md`` for what each protocol reproduces.
"""

from __future__ import annotations

import difflib

from salbench.protocols.base import Protocol, ProtocolResult
from salbench.protocols.coursework import CourseworkProtocol, QuantisationWrapWarning
from salbench.protocols.exact import ExactProtocol
from salbench.protocols.mit import MITProtocol
from salbench.protocols.salicon import SaliconProtocol

PROTOCOLS = {
    "mit": MITProtocol,
    "coursework": CourseworkProtocol,
    "salicon": SaliconProtocol,
    "exact": ExactProtocol,
}


def list_protocols() -> list:
    """Names of the available protocols."""
    return sorted(PROTOCOLS)


def get_protocol(name: str, **overrides) -> Protocol:
    """A protocol by name; ``overrides`` replace default parameters (unknown ones raise)."""
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(str(name), PROTOCOLS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown protocol {name!r}; available: {', '.join(list_protocols())}.{hint}")
    return PROTOCOLS[name](**overrides)


def default_protocol_for(dataset_name: str) -> str:
    """``coursework`` for the coursework pickles (``salicon-pkl``), otherwise ``mit``."""
    return "coursework" if dataset_name == "salicon-pkl" else "mit"


__all__ = [
    "PROTOCOLS",
    "CourseworkProtocol",
    "ExactProtocol",
    "MITProtocol",
    "Protocol",
    "ProtocolResult",
    "QuantisationWrapWarning",
    "SaliconProtocol",
    "default_protocol_for",
    "get_protocol",
    "list_protocols",
]
