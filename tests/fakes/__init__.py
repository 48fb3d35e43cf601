"""Providers faked by real HTTP servers on loopback, checking requests as the real APIs do."""
