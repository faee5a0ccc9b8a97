"""The shared pieces of the papers' methods, by family: distillation losses (:mod:`.distillation`), per-pixel
losses (:mod:`.dense`), amalgamation helpers (:mod:`.amalgamation`), adaptive amalgamation (:mod:`.adaptive`),
recombination (:mod:`.recombination`), transferability estimators and the ranking harness
(:mod:`.transferability`). Import them qualified, so a reader sees which paper a piece belongs to.
"""
