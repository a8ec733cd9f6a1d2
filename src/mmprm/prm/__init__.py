"""Process reward models: formats, model, training, scoring."""
