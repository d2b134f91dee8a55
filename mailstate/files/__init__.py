"""State <-> the exact bytes of every managed file: render (state -> bytes), parse (bytes ->
state, its inverse), one module per format, the managed paths and the programs mailstate
installs on a server."""
