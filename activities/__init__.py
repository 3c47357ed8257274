"""Every side effect of opsctl: adapters per system and one module per operation's steps."""
