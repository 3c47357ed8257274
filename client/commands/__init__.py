"""One module per group of commands; `client.main` imports them only when they run."""
