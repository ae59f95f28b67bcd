"""TLS to Redis: ``rediss://`` URLs with a CA bundle and an optional client certificate.

``OWL_REDIS_CA`` names the CA bundle the server's certificate is checked against (without
it, the system's trust store); ``OWL_REDIS_CERT`` and ``OWL_REDIS_KEY`` name this client's
certificate and key, for a server run with ``tls-auth-clients yes``. The server's certificate
is always verified (``ssl_cert_reqs=required``) and its host name checked. Setting any of
them with a plain ``redis://`` URL is an error: the files would be silently unused and the
traffic (passwords included) sent in clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owl.errors import ConfigError


def tls_options(url: str, ca: Path | None, cert: Path | None, key: Path | None
                ) -> dict[str, Any]:
    """redis-py connection options for ``url`` (empty for a plain or unix-socket URL)."""
    secure = url.startswith(("rediss://", "rediss+cluster://"))
    given = {"OWL_REDIS_CA": ca, "OWL_REDIS_CERT": cert, "OWL_REDIS_KEY": key}
    named = [k for k, v in given.items() if v is not None]
    if not secure:
        if named:
            raise ConfigError(f"{', '.join(named)} set, but the Redis URL does not use TLS: "
                              "write rediss://HOST:PORT (or unset them)")
        return {}
    for name, path in given.items():
        if path is not None and not path.is_file():
            raise ConfigError(f"{name}={path}: no such file")
    if (cert is None) != (key is None):
        raise ConfigError("OWL_REDIS_CERT and OWL_REDIS_KEY go together (a client certificate "
                          "and its key)")
    opts: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if ca is not None:
        opts["ssl_ca_certs"] = str(ca)
    if cert is not None and key is not None:
        opts["ssl_certfile"] = str(cert)
        opts["ssl_keyfile"] = str(key)
    return opts
