"""fastreq 3.x's ``fastreq.backends.base``: the transport contract and the
data classes it uses, for code that imports them from here."""

from ..models import NormalizedResponse, RequestConfig
from . import Backend, TransportKey

__all__ = ["Backend", "NormalizedResponse", "RequestConfig", "TransportKey"]
