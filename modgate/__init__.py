"""modgate's shared code.

The library, imported by the gateway and the model services (and by product backends):
``modgate.v1`` (generated protobuf code), ``policy`` (the policy schema and loader; the default
policy is ``policies/default.yaml``), ``wire`` (the gateway <-> service JSON types),
``telemetry`` (tracing and trace-aware logging), ``client`` (the Python client), ``ports``
(the local stack's addresses, the defaults of everything above).

The developer tools live in ``modgate.tools`` (the `modgate` command, the local stack, the
demo, generated media, load generation, the trace store); no process on the request path
imports them.
"""
