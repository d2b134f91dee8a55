"""The bottom layer: value types (logins, addresses, sizes), the state a server holds, the
server's file layout, password hashes, routing over a state, and diagnostics (file:line problems).
Imports nothing else of mailstate."""
