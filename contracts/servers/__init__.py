"""Real servers for the contract suite: llama-server built from its PyPI sdist, a scripted model."""
