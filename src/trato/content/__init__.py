"""Communications: the inventory, templates per channel, rendering, preview, versions and approval."""
