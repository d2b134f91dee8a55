"""The apply engine's internals: preparing a server's plan (read, render, diff), staging a
generation, running the crash-safe activation on the server, generations and retention."""
