"""Providers' HTTP APIs faked by real HTTP servers on loopback, checking requests as the real
ones do and answering with their real payload shapes (see each module)."""
