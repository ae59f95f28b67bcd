"""``owl web``: the operators' web board and the Prometheus ``/metrics`` exporter.

Starlette, uvicorn and prometheus_client are imported only inside this package, so the CLI
and the agents stay fast to start when nobody asks for the web board.
"""
