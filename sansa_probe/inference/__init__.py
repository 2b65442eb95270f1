"""The one few-shot inference path (:mod:`.fewshot`) and its pluggable preprocessing (:mod:`.protocol`)."""

from sansa_probe.inference.fewshot import FewShotInference, References, TargetPrediction, check_threshold, prepare_references
from sansa_probe.inference.protocol import PROTOCOLS, HsnetProtocol, Protocol, ReleaseProtocol, get_protocol, release_square

__all__ = [
    "FewShotInference",
    "References",
    "TargetPrediction",
    "prepare_references",
    "check_threshold",
    "Protocol",
    "HsnetProtocol",
    "ReleaseProtocol",
    "release_square",
    "PROTOCOLS",
    "get_protocol",
]
