"""Live: what a client sees of a run while it happens. The hub (in-process publish/subscribe with a
replayable log per run), the backbone (the same events between engine processes), the watcher (one
for the process: runs that end in another process), and the long-poll and SSE stream on top of them.
Nothing here imports app.api or app.runner."""
