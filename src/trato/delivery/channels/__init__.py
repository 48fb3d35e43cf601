"""Channel adapters: one interface (:mod:`.base`), found through the ``trato.channels`` entry
points (:mod:`.registry`)."""
