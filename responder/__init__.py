"""alert-responder: closes the loop between Prometheus alerts and automated recovery."""

__version__ = "0.1.0"
