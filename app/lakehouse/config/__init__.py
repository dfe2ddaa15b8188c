"""What every part reads and nothing here runs: settings, secrets, pinned versions, the storage
layout, names, paths, and the endpoints of a running stack. Imports nothing above it."""
