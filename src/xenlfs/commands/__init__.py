"""CLI verbs, one module per group (parser.py and lab_options.py hold what they share).
Each has register(verbs, common); logic lives elsewhere."""
