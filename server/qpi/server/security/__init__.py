"""Security building blocks of the server.

Submodules are imported explicitly (e.g. :mod:`qpi.server.security.pki` for the private
TLS CA and server certificate) so that importing one of them does not pull in the heavy
dependencies of the others.
"""
