"""The contract suite: one set of checks against the fake, a real llama-server or any URL."""
