"""What tests share besides fixtures: the test client's helpers (client), real gunicorn servers
(servers), one HTTP request (http), an SSE reader (sse), a private PostgreSQL (postgres) and
wait_until (wait), headless Chromium (browser) and signed tokens (auth). Tests import these; no test
imports conftest or another test."""
