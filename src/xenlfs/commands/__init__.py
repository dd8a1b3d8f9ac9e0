"""CLI verbs, one module per group. Each has register(verbs, common); logic lives elsewhere."""
