"""Communications: inventory, per-channel templates, rendering, preview, versions, approval."""
