"""knowledge-entropy: from pretraining checkpoints to knowledge entropy, continual-learning and knowledge-frequency
tables and figures. The stages are subpackages (docs/design.md, "Layout"): core (the vocabulary every stage
shares), sources, training, measurement, evaluation, analysis, report, cli, jobs."""
