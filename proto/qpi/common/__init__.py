"""Small pure-Python helpers shared by every QPI part (server, driver, SDK, gateway).

They live in `qpi-proto` because it is the one package all parts already depend on; the
driver and the SDK must never import the server. Only the standard library is used here.
"""
