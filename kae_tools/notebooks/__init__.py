"""The stored notebooks as files: which there are and how names resolve (:mod:`.catalog`), their metadata
cleaning (:mod:`.nbclean`) and their jupytext text forms (:mod:`.pairing`). Imports nothing else."""
