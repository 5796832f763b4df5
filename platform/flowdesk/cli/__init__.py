"""The command line. `commands` holds one function per verb (used by tests
and the API too); `main` parses arguments and prints; `render` formats
diagnostics. May import every other layer; nothing imports it."""
